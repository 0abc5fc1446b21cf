#[procession::test(panics = 0)]
fn none() {}

fn main() {}
