struct Worker;
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub fn start(&mut self) {}

    pub(crate) fn stop(&mut self) {}
}

fn main() {}
