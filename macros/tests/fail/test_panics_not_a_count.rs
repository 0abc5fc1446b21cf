#[procession::test(panics = -1)]
fn negative() {}

#[procession::test(panics = "one")]
fn text() {}

fn main() {}
