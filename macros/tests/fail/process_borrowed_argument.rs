struct Worker {
    name: String,
}
impl procession::Process for Worker {}

#[procession::process]
impl Worker {
    pub fn rename(&mut self, name: &str) {
        self.name = name.to_owned();
    }

    pub fn name(&self) -> &String {
        &self.name
    }
}

fn main() {}
