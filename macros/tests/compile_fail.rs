//! Compile errors of every macro point at the user's code (trybuild snapshots in `fail/`).

#[test]
fn compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/fail/*.rs");
}
