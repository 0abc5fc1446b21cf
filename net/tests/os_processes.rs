//! Two OS processes: this test binary starts itself again as a second node (the `echo_node`
//! test, which does nothing unless the environment says it is the child), learns the echo
//! process's Upid from the child's stdout, and talks to it over real TCP. Killing the child
//! makes the parent's monitor of it end Lost.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use procession::{monitor, send, Context, ExitReason, Message, Process, Runtime, Upid};
use procession_net::Net;
use serde::{Deserialize, Serialize};

const CHILD: &str = "PROCESSION_NET_ECHO_CHILD";

#[derive(Serialize, Deserialize)]
struct Echo(String);
impl Message for Echo {
    const NAME: &'static str = "os-test::Echo";
}

/// Replies to every `Echo` with the same text, upper-cased.
struct Echoer;
impl Process for Echoer {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|_: &mut Self, from: &Upid, Echo(text)| send(from, Echo(text.to_uppercase())))
            .unwrap();
    }
}

/// Collects replies.
struct Listener(mpsc::Sender<String>);
impl Process for Listener {
    fn initialize(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.install(|me: &mut Self, _: &Upid, Echo(text)| {
            let _ = me.0.send(text);
        })
        .unwrap();
    }
}

/// The child node: serves until its parent closes its stdin.
#[test]
fn echo_node() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = Runtime::new();
    let _net = Net::start(&runtime).unwrap();
    let echoer = runtime.spawn(Echoer);
    println!("UPID {}", echoer.upid());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn two_os_processes_talk_over_tcp() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "echo_node", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let upid: Upid = stdout
        .lines()
        .map(Result::unwrap)
        // libtest prints the test's name on the same line first.
        .find_map(|line| {
            line.split_once("UPID ")
                .map(|(_, upid)| upid.trim().to_owned())
        })
        .expect("the child prints its echo process's Upid")
        .parse()
        .unwrap();
    assert_ne!(child.id(), std::process::id());

    let runtime = Runtime::new();
    let _net = Net::start(&runtime).unwrap();
    let (replies, received) = mpsc::channel();
    let listener = runtime.spawn(Listener(replies)).upid();
    let _entered = runtime.enter();
    for word in ["across", "two", "processes"] {
        procession::post(&listener, &upid, Echo(word.into()));
        let reply = received.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(reply, word.to_uppercase());
    }

    let lost = monitor(&upid);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(runtime.block_on(lost).unwrap(), ExitReason::Lost);
}
