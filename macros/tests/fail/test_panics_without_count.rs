#[procession::test(panics)]
fn some() {}

fn main() {}
