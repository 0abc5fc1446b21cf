//! A remote pipe's throughput (procession_net::pipe) against a raw tokio TCP copy of the same
//! bytes over loopback, in one run: 64 KiB chunks written on one node and read on another.
//!
//! `cargo run --release --bin remote_pipe -- [MiB]` (default 1024: one GiB).

use std::time::{Duration, Instant};

use bytes::Bytes;
use procession::Runtime;
use procession_net::pipe::remote_pipe;
use procession_net::Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 64 << 10;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map_or(1024, |s| s.parse().expect("MiB"));
    let total = mib << 20;
    let mut pipe = Vec::new();
    let mut tcp = Vec::new();
    for _ in 0..3 {
        pipe.push(procession_pipe(total));
        tcp.push(raw_tcp(total));
    }
    pipe.sort_by(f64::total_cmp);
    tcp.sort_by(f64::total_cmp);
    let (pipe, tcp) = (pipe[1], tcp[1]);
    println!(
        "remote pipe: {mib} MiB in 64 KiB chunks over loopback: {:.2} GiB/s; raw tokio TCP copy: {:.2} GiB/s; ratio {:.2} (medians of 3)",
        pipe,
        tcp,
        pipe / tcp
    );
}

fn gib_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / took.as_secs_f64()
}

fn procession_pipe(total: usize) -> f64 {
    let (reading, writing) = (Runtime::new(), Runtime::new());
    let _nets = (Net::start(&reading).unwrap(), Net::start(&writing).unwrap());
    let (mut reader, token) = {
        let _entered = reading.enter();
        remote_pipe()
    };
    let mut writer = {
        let _entered = writing.enter();
        token.open()
    };
    let chunk = Bytes::from(vec![7u8; CHUNK]);
    let started = Instant::now();
    let reads = std::thread::spawn(move || {
        let mut got = 0;
        while let Ok(Some(chunk)) = reading.block_on(reader.read()) {
            got += chunk.len();
        }
        got
    });
    let mut sent = 0;
    while sent < total {
        writing.block_on(writer.write(chunk.clone())).unwrap();
        sent += CHUNK;
    }
    writer.close();
    assert_eq!(reads.join().unwrap(), sent);
    gib_per_s(sent, started.elapsed())
}

fn raw_tcp(total: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let started = Instant::now();
        let reader = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; CHUNK];
            let mut got = 0;
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                if n == 0 {
                    return got;
                }
                got += n;
            }
        });
        let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
        let chunk = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            socket.write_all(&chunk).await.unwrap();
            sent += CHUNK;
        }
        socket.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), sent);
        gib_per_s(sent, started.elapsed())
    })
}
