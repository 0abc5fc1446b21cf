//! Child processes: streams as pipes (integrity both ways, back-pressure from a child that stops
//! reading), files, descriptors and null; exit codes and signals; kill, a discarded status and
//! a timeout each kill and reap; a missing binary is an error; shutdown leaves no child and no
//! zombie; `reap` for children started elsewhere.
#![cfg(target_os = "linux")]

#[macro_use]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use procession::pipe::PipeError;
use procession::subprocess::{reap, subprocess, Io};
use procession::{spawn_async, Failure, Future, Runtime};

/// Whether OS process `pid` still exists as a child of this process (running or a zombie).
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the parenthesised command: state, ppid, ...
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
    ppid == std::process::id()
}

rt_test!(bytes_round_trip_through_a_child, |flavor, rt| {
    let _entered = rt.enter();
    let data: Vec<u8> = (0..support::scaled(1 << 20))
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let mut child = subprocess("cat")
        .stdin(Io::Pipe)
        .stdout(Io::Pipe)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let feeding = spawn_async(async move {
        for chunk in input.chunks(10_000) {
            stdin.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        stdin.close();
    });
    let output = child.stdout.take().unwrap().read_all();
    assert_eq!(rt.block_on(output).unwrap(), data);
    rt.block_on(feeding).unwrap();
    assert!(rt.block_on(child.status()).unwrap().success());
    assert!(!is_our_child(child.id()), "reaped");
});

rt_test!(exit_codes_and_stderr_are_reported, |flavor, rt| {
    let _entered = rt.enter();
    let mut child = subprocess("sh")
        .args(["-c", "echo oops >&2; exit 3"])
        .stderr(Io::Pipe)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap().read_all();
    assert_eq!(rt.block_on(stderr).unwrap(), "oops\n");
    assert_eq!(rt.block_on(child.status()).unwrap().code(), Some(3));
    assert!(child.stdin.is_none() && child.stdout.is_none());
});

#[test]
fn environment_and_working_directory_are_set() {
    let rt = Runtime::new();
    let _entered = rt.enter();
    let dir = std::env::temp_dir();
    let mut child = subprocess("sh")
        .args(["-c", "echo \"$GREETING\"; echo \"$HOME\"; pwd"])
        .env_clear()
        .env("GREETING", "hi")
        .env("HOME", "/nowhere")
        .env_remove("HOME")
        .current_dir(&dir)
        .stdout(Io::Pipe)
        .spawn()
        .unwrap();
    let out = rt
        .block_on(child.stdout.take().unwrap().read_all())
        .unwrap();
    let expected = format!("hi\n\n{}\n", dir.canonicalize().unwrap().display());
    assert_eq!(String::from_utf8_lossy(&out), expected);
}

#[test]
fn a_missing_binary_is_an_error_with_the_os_error() {
    let rt = Runtime::new();
    let _entered = rt.enter();
    let failure = subprocess("/no/such/binary").spawn().unwrap_err();
    let io = failure
        .downcast_ref::<std::io::Error>()
        .expect("the OS error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(failure.message().contains("/no/such/binary"), "{failure}");
}

#[test]
fn files_descriptors_and_null_are_streams() {
    let rt = Runtime::new();
    let _entered = rt.enter();
    let dir = std::env::temp_dir().join(format!("procession-subprocess-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in");
    let output = dir.join("out");
    std::fs::write(&input, "from a file\n").unwrap();
    let _ = std::fs::remove_file(&output);
    let child = subprocess("cat")
        .stdin(Io::Path(input.clone()))
        .stdout(Io::Path(output.clone()))
        .spawn()
        .unwrap();
    assert!(rt.block_on(child.status()).unwrap().success());
    let fd = std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .unwrap();
    let child = subprocess("echo")
        .arg("through a descriptor")
        .stdout(Io::Fd(fd.into()))
        .stdin(Io::Null)
        .stderr(Io::Null)
        .spawn()
        .unwrap();
    assert!(rt.block_on(child.status()).unwrap().success());
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "from a file\nthrough a descriptor\n"
    );
    let bad = subprocess("cat")
        .stdin(Io::Path(dir.join("missing")))
        .spawn();
    assert!(bad.unwrap_err().message().contains("missing"));
    std::fs::remove_dir_all(&dir).unwrap();
}

rt_test!(kill_ends_the_child_with_a_signal, |flavor, rt| {
    let _entered = rt.enter();
    let child = subprocess("sleep").arg("1000").spawn().unwrap();
    assert!(is_our_child(child.id()));
    child.kill();
    let status = rt.block_on(child.status()).unwrap();
    assert_eq!(status.signal(), Some(9));
    assert!(!is_our_child(child.id()), "reaped");
    child.kill(); // a no-op once it has exited
});

rt_test!(discarding_the_status_kills_and_reaps, |flavor, rt| {
    let _entered = rt.enter();
    let child = subprocess("sleep").arg("1000").spawn().unwrap();
    let status = child.status();
    status.discard();
    assert!(rt.block_on(status.clone()).unwrap_err().is_discarded());
    assert!(
        !is_our_child(child.id()),
        "killed and reaped before the future ended"
    );
});

#[test]
fn a_timeout_on_the_runtime_clock_kills_a_hung_child() {
    let rt = Runtime::builder().paused().build().unwrap();
    let _entered = rt.enter();
    let child = subprocess("sleep").arg("1000").spawn().unwrap();
    let bounded = child.status().after(Duration::from_secs(5), |status| {
        status.discard();
        Future::failed("timed out")
    });
    rt.clock().advance(Duration::from_secs(5));
    assert!(rt.block_on(bounded.clone()).is_err());
    assert_eq!(support::failure_message(&bounded), "timed out");
    assert!(rt.block_on(child.status()).unwrap_err().is_discarded());
    assert!(!is_our_child(child.id()));
}

rt_test!(a_child_that_stops_reading_fails_the_writer, |flavor, rt| {
    let _entered = rt.enter();
    let mut child = subprocess("head")
        .args(["-c", "10"])
        .stdin(Io::Pipe)
        .stdout(Io::Null)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writing = spawn_async(async move {
        loop {
            if let Err(error) = stdin.write(Bytes::from(vec![b'x'; 4096])).await {
                return error
                    .failure()
                    .and_then(Failure::downcast_ref::<PipeError>)
                    .copied();
            }
        }
    });
    assert!(rt.block_on(child.status()).unwrap().success());
    assert_eq!(rt.block_on(writing).unwrap(), Some(PipeError::ReaderClosed));
});

#[test]
fn shutdown_kills_and_reaps_every_child() {
    let rt = Runtime::new();
    let ids: Vec<u32> = {
        let _entered = rt.enter();
        (0..3)
            .map(|_| subprocess("sleep").arg("1000").spawn().unwrap().id())
            .collect()
    };
    assert!(ids.iter().all(|&id| is_our_child(id)));
    let report = rt.shutdown();
    assert!(report.is_complete(), "{report:?}");
    for id in ids {
        assert!(
            !is_our_child(id),
            "child {id} left behind (running or a zombie)"
        );
    }
}

/// Starts `sleep 1000` and, whenever it ends, another: a keep-alive that shutdown must outrun.
fn keep_alive(started: Arc<Mutex<Vec<u32>>>) {
    if let Ok(child) = subprocess("sleep").arg("1000").spawn() {
        started.lock().push(child.id());
        child.status().on_any(move |_| keep_alive(started));
    }
}

#[test]
fn a_child_started_as_shutdown_kills_the_others_is_not_left_behind() {
    let rt = Runtime::builder()
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    {
        let _entered = rt.enter();
        keep_alive(started.clone());
    }
    let report = rt.shutdown();
    assert!(report.is_complete(), "{report:?}");
    let started = started.lock();
    assert_eq!(
        started.len(),
        1,
        "no replacement starts during shutdown: {started:?}"
    );
    assert!(!is_our_child(started[0]));
}

#[test]
fn starting_a_child_on_a_runtime_that_shut_down_fails() {
    let rt = Runtime::new();
    let _entered = rt.enter();
    rt.shutdown();
    let Err(refused) = subprocess("true").spawn() else {
        panic!("a child started after shutdown");
    };
    assert!(refused.to_string().contains("shutting down"), "{refused}");
}

#[test]
#[allow(clippy::zombie_processes)] // `reap` is what waits for it
fn reap_waits_for_children_started_elsewhere() {
    let rt = Runtime::new();
    let _entered = rt.enter();
    let started = std::process::Command::new("sh")
        .args(["-c", "sleep 0.05; exit 7"])
        .spawn()
        .unwrap();
    let status = rt.block_on(reap(started.id())).unwrap();
    assert_eq!(status.code(), Some(7));
    assert!(!is_our_child(started.id()));
    let not_a_pid = reap(u32::MAX);
    assert!(support::failure_message(&not_a_pid).contains("not a process id"));
    let not_ours = reap(1);
    assert!(rt.block_on(not_ours.clone()).is_err());
    assert!(support::failure_message(&not_ours).contains("reap 1"));
}
