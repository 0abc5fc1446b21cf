//! What `#[procession::test]` expands to call: run a test body on a fresh runtime, then shut it
//! down and check it.

use procession_runtime::{Builder, Runtime};

/// Builds a runtime from `builder`, runs `body` with it entered on this thread, shuts it down,
/// and returns the body's output.
///
/// # Panics
///
/// Panics if the runtime cannot be built; after the body, if the number of processes that
/// panicked while the test ran or shut down is not `panics` (`#[procession::test(panics = N)]`,
/// else 0); and if the shutdown left processes unfinished or child processes unreaped. A panic
/// in the body itself unwinds through here (the runtime is then shut down by its drop).
pub fn run_test<R>(builder: Builder, panics: u64, body: impl FnOnce(&Runtime) -> R) -> R {
    let runtime = builder.build().unwrap_or_else(|error| {
        panic!("#[procession::test]: building the runtime failed: {error}")
    });
    let output = {
        let _entered = runtime.enter();
        body(&runtime)
    };
    let report = runtime.shutdown();
    let panicked = report.panicked();
    if panicked != panics {
        let expected = match panics {
            0 => String::new(),
            n => format!(", where the test expects {n} (`panics = {n}`)"),
        };
        panic!(
            "#[procession::test]: {panicked} process(es) panicked while the test ran or its \
             runtime shut down{expected}; each panic's message is printed above"
        );
    }
    assert!(
        report.is_complete(),
        "#[procession::test]: the runtime's shutdown did not finish: processes unfinished \
         {:?}, child processes unreaped {:?}",
        report.unfinished(),
        report.unreaped()
    );
    output
}
