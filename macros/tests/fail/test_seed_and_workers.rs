#[procession::test(seed = 3, workers = 2)]
fn both() {}

fn main() {}
