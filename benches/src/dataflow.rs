//! Pinned against unpinned on the `dataflow` example's job (two pipelines of source → map →
//! keyed window count → sink on two workers), in one run: an even load and a skewed one (90 %
//! of the records in one pipeline). Prints the medians of events/s and their ratio.
//!
//! `cargo run --release --bin dataflow -- [events] [rounds]` (default 1 000 000 events, 5 rounds).

#[path = "../../examples/dataflow.rs"]
#[allow(dead_code)]
mod dataflow;

fn main() {
    let mut args = std::env::args().skip(1);
    let events = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("events"));
    let rounds = args.next().map_or(5, |a| a.parse().expect("rounds"));
    for (label, share) in [("even", 50), ("skewed-90/10", 90)] {
        let job = dataflow::Job::new(events, share);
        let (pinned, unpinned, counts) = dataflow::compare(job, rounds);
        assert!(counts == dataflow::expected(&job), "the job miscounted");
        println!(
            "dataflow {label}: pinned {:.2} M events/s, unpinned {:.2} M events/s, \
             pinned ÷ unpinned {:.2} ({events} events, medians of {rounds} rounds)",
            pinned / 1e6,
            unpinned / 1e6,
            pinned / unpinned,
        );
    }
}
