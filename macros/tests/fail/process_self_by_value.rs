struct Worker;
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub fn consume(self) -> u8 {
        1
    }
}

fn main() {
    // The impl block is still emitted: no second error here.
    let _ = Worker.consume();
}
