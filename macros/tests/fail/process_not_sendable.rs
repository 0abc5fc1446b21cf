use std::rc::Rc;

struct Worker;
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub fn shared(&self) -> Rc<u8> {
        Rc::new(1)
    }
}

fn main() {}
