struct Worker;
impl procession::Process for Worker {}

#[procession::process(name = WorkerApi)]
impl Worker {
    pub fn start(&mut self) {}
}

fn main() {}
