struct Worker;
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub fn id(&self) -> u64 {
        7
    }
}

fn main() {}
