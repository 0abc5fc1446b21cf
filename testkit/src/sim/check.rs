//! The determinism self-check: one seed, two runs, the first event where they differ.

use std::fmt;

use super::{Event, Sim};

/// Where two runs of one seed stopped agreeing; see [`check_determinism`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The seed.
    pub seed: u64,
    /// The index of the first event that differs.
    pub index: usize,
    /// The first run's event there (`None`: the first run had ended).
    pub first: Option<Event>,
    /// The second run's event there (`None`: the second run had ended).
    pub second: Option<Event>,
    /// The events both runs agree on just before it (up to five), for context.
    pub before: Vec<Event>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |event: &Option<Event>| match event {
            Some(event) => event.to_string(),
            None => "(the run had ended)".to_owned(),
        };
        writeln!(
            f,
            "two runs of seed {} diverge at event {}:\n  first run:  {}\n  second run: {}",
            self.seed,
            self.index,
            show(&self.first),
            show(&self.second)
        )?;
        if !self.before.is_empty() {
            f.write_str("after, in both:")?;
            for (offset, event) in self.before.iter().enumerate() {
                let index = self.index - self.before.len() + offset;
                write!(f, "\n  {index}: {event}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Divergence {}

/// Runs `scenario` twice with `seed` and compares the two traces event by event: a simulation
/// is only worth its seed if the seed replays it. Something outside the seed's control — a
/// `HashMap`'s iteration order, a thread, the wall clock, a real socket — shows up here as the
/// first event where the runs differ.
///
/// ```
/// use std::time::Duration;
/// use procession_testkit::sim::{check_determinism, Sim};
///
/// check_determinism(9, |seed| {
///     let mut sim = Sim::new(seed);
///     sim.add_node("a", |_, _| {});
///     sim.run_for(Duration::from_secs(1));
///     sim
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// The [`Divergence`]: the index of the first differing event, both runs' events there, and
/// the events just before it.
pub fn check_determinism(
    seed: u64,
    mut scenario: impl FnMut(u64) -> Sim,
) -> Result<(), Box<Divergence>> {
    let first = scenario(seed);
    let second = scenario(seed);
    let (a, b) = (first.trace().events(), second.trace().events());
    let Some(index) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) else {
        return Ok(());
    };
    Err(Box::new(Divergence {
        seed,
        index,
        first: a.get(index).cloned(),
        second: b.get(index).cloned(),
        before: a[index.saturating_sub(5)..index].to_vec(),
    }))
}
