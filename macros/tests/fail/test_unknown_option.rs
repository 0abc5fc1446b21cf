#[procession::test(threads = 2)]
fn unknown() {}

fn main() {}
