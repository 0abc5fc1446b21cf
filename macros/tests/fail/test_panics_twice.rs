#[procession::test(panics = 1, panics = 2)]
fn twice() {}

fn main() {}
