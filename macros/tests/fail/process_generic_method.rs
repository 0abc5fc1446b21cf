struct Worker;
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub fn take<T: Send + 'static>(&mut self, _item: T) {}
}

fn main() {}
