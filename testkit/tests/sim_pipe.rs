//! Remote pipes in the simulation: the same code as over TCP, with the simulated network's
//! latency between the ends, and a partition failing both ends instead of hanging.

use std::time::Duration;

use bytes::Bytes;
use procession::pipe::Writer;
use procession_net::pipe::{remote_pipe_with_window, RemotePipeError};
use procession_testkit::sim::{run_seeds, Latency, Sim};

fn chunk(n: u32) -> Bytes {
    Bytes::from(n.to_be_bytes().repeat(256))
}

/// A pipe from node b to node a, 8 KiB window.
fn pipe(
    sim: &mut Sim,
) -> (
    procession::pipe::Reader,
    Writer,
    [procession_testkit::sim::NodeId; 2],
) {
    let a = sim.add_node("reading", |_, _| {});
    let b = sim.add_node("writing", |_, _| {});
    let (reader, token) = {
        let _entered = sim.runtime(a).unwrap().enter();
        remote_pipe_with_window(8 << 10)
    };
    let writer = {
        let _entered = sim.runtime(b).unwrap().enter();
        token.open()
    };
    (reader, writer, [a, b])
}

#[test]
fn a_remote_pipe_streams_across_simulated_nodes_with_back_pressure() {
    run_seeds(30, |seed| {
        let mut sim = Sim::builder(seed)
            .latency(Latency::uniform(
                Duration::from_millis(1),
                Duration::from_millis(20),
            ))
            .build();
        let (reader, mut writer, _) = pipe(&mut sim);
        let all = reader.read_all();
        for n in 0..64 {
            sim.block_on(writer.write(chunk(n))).unwrap().unwrap();
        }
        writer.close();
        let got = sim.block_on(all).unwrap().unwrap();
        let want: Vec<u8> = (0..64).flat_map(|n| chunk(n).to_vec()).collect();
        assert_eq!(got, want);
        // 64 KiB through an 8 KiB window over 1-20 ms links takes several round trips.
        assert!(sim.now() > Duration::from_millis(20), "{:?}", sim.now());
    });
}

#[test]
fn a_partition_mid_stream_fails_both_ends() {
    run_seeds(30, |seed| {
        let mut sim = Sim::new(seed);
        let (mut reader, mut writer, [a, b]) = pipe(&mut sim);
        sim.block_on(writer.write(chunk(1))).unwrap().unwrap();
        assert_eq!(
            sim.block_on(reader.read()).unwrap().unwrap(),
            Some(chunk(1))
        );
        sim.partition(a, b);
        let read = sim.block_on(reader.read()).unwrap();
        let failure = read.unwrap_err().failure().cloned().unwrap();
        assert!(
            matches!(failure.downcast_ref(), Some(RemotePipeError::Lost(_))),
            "{failure:?}"
        );
        let closed = writer.reader_closed();
        sim.block_on(closed).unwrap().unwrap();
        let write = sim.block_on(writer.write(chunk(2))).unwrap();
        let failure = write.unwrap_err().failure().cloned().unwrap();
        assert!(
            matches!(failure.downcast_ref(), Some(RemotePipeError::Lost(_))),
            "{failure:?}"
        );
    });
}
