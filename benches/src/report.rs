//! The report: medians per (workload, system) and the Markdown table with the ratios.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::workload::Workload;
use crate::{Options, BEST_PEER_FROM};

pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

pub fn format_value(workload: Workload, value: f64) -> String {
    if let Some(body) = workload.body_bytes() {
        // Messages per second, and the bodies' bytes per second beside them.
        let rate = if value >= 1e6 {
            format!("{:.2} M", value / 1e6)
        } else {
            format!("{:.1} k", value / 1e3)
        };
        format!("{rate} ({:.0} MB/s)", value * body as f64 / 1e6)
    } else if workload.unit() == "GiB/s" {
        format!("{value:.2}")
    } else if workload.lower_is_better() {
        thousands(value)
    } else if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else {
        format!("{:.0} k", value / 1e3)
    }
}

pub fn table(options: &Options, results: &BTreeMap<(Workload, &'static str), Vec<f64>>) -> String {
    let mut out = String::new();
    let mut header = String::from("| workload | unit |");
    let mut rule = String::from("|---|---|");
    for system in &options.systems {
        let _ = write!(header, " {system} |");
        rule.push_str("---:|");
    }
    header.push_str(" best peer | procession ÷ best peer | target | met | procession ÷ tokio-1w |");
    rule.push_str("---|---:|---|:---:|---:|");
    let _ = writeln!(out, "{header}\n{rule}");
    for &workload in &options.workloads {
        let medians: BTreeMap<&str, f64> = options
            .systems
            .iter()
            .filter_map(|&s| Some((s, median(results.get(&(workload, s))?)?)))
            .collect();
        let mut row = format!("| {} | {} |", workload.title(), workload.unit());
        for system in &options.systems {
            match medians.get(system) {
                Some(&v) => {
                    let _ = write!(row, " {} |", format_value(workload, v));
                }
                None => row.push_str(" – |"),
            }
        }
        let better = |a: f64, b: f64| {
            if workload.lower_is_better() {
                a < b
            } else {
                a > b
            }
        };
        // Best of tokio-2w, actix, ractor, kameo; for `then`, where only the futures chain on
        // tokio ran, that one.
        let mut candidates: Vec<(&str, f64)> = BEST_PEER_FROM
            .iter()
            .filter_map(|&s| Some((s, *medians.get(s)?)))
            .collect();
        if candidates.is_empty() {
            candidates = medians
                .iter()
                .filter(|(s, _)| **s != "procession")
                .map(|(s, v)| (*s, *v))
                .collect();
        }
        let best = candidates
            .into_iter()
            .reduce(|a, b| if better(b.1, a.1) { b } else { a });
        let ours = medians.get("procession").copied();
        let target = workload.target();
        let bound = if workload.lower_is_better() {
            "≤"
        } else {
            "≥"
        };
        // Rows without a target in PERFORMANCE.md still show their ratio.
        let target_cell = if target.is_nan() {
            "–".to_owned()
        } else {
            format!("{bound} {target}")
        };
        match (best, ours) {
            (Some((name, best)), Some(ours)) => {
                let ratio = ours / best;
                let met = if workload.lower_is_better() {
                    ratio <= target
                } else {
                    ratio >= target
                };
                let met = match (target.is_nan(), met) {
                    (true, _) => "–",
                    (false, true) => "yes",
                    (false, false) => "no",
                };
                let _ = write!(row, " {name} | {ratio:.2} | {target_cell} | {met} |");
            }
            (Some((name, _)), None) => {
                let _ = write!(row, " {name} | – | {target_cell} | – |");
            }
            _ => row.push_str(" – | – | – | – |"),
        }
        match (ours, medians.get("tokio-1w")) {
            (Some(ours), Some(&t1)) if workload != Workload::Then => {
                let _ = write!(row, " {:.2} |", ours / t1);
            }
            _ => row.push_str(" – |"),
        }
        let _ = writeln!(out, "{row}");
    }
    out.push_str(
        "\nMedians of the rounds. Ratios are procession's median over the peer's: for ns and \
         bytes lower is better, for rates higher is better. Best peer: the best of tokio-2w, \
         actix, ractor, kameo. The `then` row's peer is a chain of 10 `futures` `map`s on a \
         oneshot awaited on a current-thread tokio runtime, reported as tokio-1w. W1's target \
         also asks procession ÷ tokio-1w ≤ 1. The pipe, pipeline, queue and mutex rows have \
         tokio by hand as their only peer (actix, ractor and kameo have no such primitives); \
         both pipe rows measure the same procession pipe, against a bounded mpsc of `Bytes` and \
         against `tokio::io::duplex`. The remote rows also have only tokio by hand, as raw \
         TCP (length-prefixed frames over a loopback `TcpStream`, each end on a tokio runtime \
         of its own, as procession's two nodes are); their one-way cells give messages/s and, \
         in brackets, the bodies' MB/s (10^6 bytes).\n",
    );
    out
}
