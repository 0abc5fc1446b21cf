struct Worker;
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub async fn fetch(&self) -> u8 {
        1
    }
}

fn main() {}
