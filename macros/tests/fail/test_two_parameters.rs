#[procession::test]
fn two(runtime: &procession::Runtime, other: &procession::Runtime) {
    let _ = (runtime, other);
}

fn main() {}
