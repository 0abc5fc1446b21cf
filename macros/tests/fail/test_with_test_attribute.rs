#[procession::test]
#[test]
fn twice() {}

fn main() {}
