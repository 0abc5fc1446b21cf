//! RateLimiter: exact grant instants on a paused runtime clock (a burst, then one grant each
//! time the oldest leaves the window), FIFO order, a discarded acquire that consumes no permit,
//! the drop and panic cases, and a short run on a clock that is not paused.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex as Recorder;
use procession::{Clock, Future, RateLimiter, Runtime};

const SEC: Duration = Duration::from_secs(1);

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn rate_limiter_is_send_and_sync() {
    assert_send_sync::<RateLimiter>();
}

/// Records the clock's reading (in whole seconds since `start`) and `label` when `grant` is
/// ready.
fn record(
    grant: &Future<()>,
    clock: &Clock,
    start: Instant,
    label: usize,
    log: &Arc<Recorder<Vec<(usize, u64)>>>,
) {
    let (clock, log) = (clock.clone(), log.clone());
    grant.on_ready(move |()| {
        let at = clock.now().duration_since(start);
        assert_eq!(
            at.subsec_nanos(),
            0,
            "a grant between whole seconds: {at:?}"
        );
        log.lock().push((label, at.as_secs()));
    });
}

rt_test!(
    a_burst_is_granted_at_exact_instants_in_order,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let start = clock.now();
        let limiter = RateLimiter::new(3, 10 * SEC);
        let log = Arc::new(Recorder::new(Vec::new()));
        let grants: Vec<_> = (0..7).map(|_| limiter.acquire()).collect();
        for (i, grant) in grants.iter().enumerate() {
            record(grant, &clock, start, i, &log);
        }
        assert_eq!(*log.lock(), [(0, 0), (1, 0), (2, 0)]);
        clock.advance(9 * SEC);
        support::settle_within(&clock);
        assert_eq!(log.lock().len(), 3, "nothing before the window ends");
        clock.advance(SEC);
        assert_eq!(log.lock().len(), 6);
        clock.advance(10 * SEC);
        let expected: Vec<(usize, u64)> =
            vec![(0, 0), (1, 0), (2, 0), (3, 10), (4, 10), (5, 10), (6, 20)];
        assert_eq!(*log.lock(), expected);
        assert!(grants.iter().all(Future::is_ready));
    }
);

rt_test!(
    a_grant_waits_for_the_oldest_grant_to_leave_the_window,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let start = clock.now();
        let limiter = RateLimiter::new(2, 10 * SEC);
        let log = Arc::new(Recorder::new(Vec::new()));
        // Acquires at 0, 4, 7 and 12: granted at 0, 4, 10 (when 0 leaves) and 14 (when 4 leaves).
        for (label, at) in [(0, 0), (1, 4), (2, 7), (3, 12)] {
            clock.update(start + at * SEC);
            record(&limiter.acquire(), &clock, start, label, &log);
        }
        clock.advance(10 * SEC);
        assert_eq!(*log.lock(), [(0, 0), (1, 4), (2, 10), (3, 14)]);
        // A limiter idle for longer than the window grants at once.
        clock.update(start + 40 * SEC);
        record(&limiter.acquire(), &clock, start, 4, &log);
        record(&limiter.acquire(), &clock, start, 5, &log);
        assert_eq!(log.lock()[4..], [(4, 40), (5, 40)]);
    }
);

rt_test!(
    a_discarded_acquire_gives_up_its_place_without_a_permit,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let start = clock.now();
        let limiter = RateLimiter::new(1, 10 * SEC);
        let log = Arc::new(Recorder::new(Vec::new()));
        let first = limiter.acquire();
        let given_up = limiter.acquire();
        let third = limiter.acquire();
        record(&first, &clock, start, 0, &log);
        record(&third, &clock, start, 2, &log);
        given_up.discard();
        assert!(given_up.is_discarded(), "ends discarded at once");
        clock.advance(10 * SEC);
        assert_eq!(*log.lock(), [(0, 0), (2, 10)], "the third moved up");
        let fourth = limiter.acquire();
        record(&fourth, &clock, start, 3, &log);
        clock.advance(10 * SEC);
        assert_eq!(log.lock()[2..], [(3, 20)]);

        // A lone waiter that gives up leaves the permit for whoever comes when the window ends.
        let lonely = limiter.acquire();
        lonely.discard();
        clock.advance(10 * SEC);
        let next = limiter.acquire();
        assert!(lonely.is_discarded());
        assert!(
            next.is_ready(),
            "granted at once: the discarded acquire used no permit"
        );
    }
);

rt_test!(
    dropping_the_limiter_cancels_its_timer_and_abandons_pending_acquires,
    |flavor, rt| {
        let _entered = rt.enter();
        let clock = rt.clock();
        clock.pause();
        let limiter = RateLimiter::new(1, 10 * SEC);
        let granted = limiter.acquire();
        let pending = limiter.acquire();
        assert_eq!(rt.stats().armed_timers, 1);
        drop(limiter);
        assert_eq!(rt.stats().armed_timers, 0, "the timer is cancelled");
        assert!(granted.is_ready());
        assert!(pending.is_abandoned());
        clock.advance(10 * SEC);
        support::settle_within(&clock);
        assert!(pending.is_abandoned());
    }
);

rt_test!(
    acquires_from_other_threads_use_the_limiters_runtime,
    |flavor, rt| {
        let limiter = {
            let _entered = rt.enter();
            Arc::new(RateLimiter::new(2, SEC))
        };
        let clock = rt.clock();
        clock.pause();
        let start = clock.now();
        let grants: Vec<_> = std::thread::scope(|scope| {
            (0..4)
                .map(|_| scope.spawn(|| limiter.acquire()))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(grants.iter().filter(|g| g.is_ready()).count(), 2);
        clock.advance(SEC);
        assert!(grants.iter().all(Future::is_ready));
        assert_eq!(clock.now().duration_since(start), SEC);
    }
);

rt_test!(a_running_clock_paces_the_grants_too, |flavor, rt| {
    let _entered = rt.enter();
    let clock = rt.clock();
    if !flavor.is_deterministic() {
        // Real time (the deterministic scheduler's virtual clock jumps to the timers instead).
        clock.resume();
    }
    let per = Duration::from_millis(40);
    let limiter = RateLimiter::new(2, per);
    let start = clock.now();
    let grants: Vec<_> = (0..5).map(|_| limiter.acquire()).collect();
    let last = grants.last().unwrap().clone();
    rt.block_on(last).unwrap();
    assert!(grants.iter().all(Future::is_ready));
    assert!(
        clock.now().duration_since(start) >= 2 * per,
        "five grants at two per window need two windows"
    );
});

#[test]
fn making_a_limiter_needs_a_runtime_and_a_permit() {
    let message = support::panic_message_of(|| {
        let _ = RateLimiter::new(1, SEC);
    })
    .expect("no current runtime");
    assert!(message.contains("RateLimiter::new"), "{message}");

    let runtime = Runtime::builder().paused().build().unwrap();
    let _entered = runtime.enter();
    let message = support::panic_message_of(|| {
        let _ = RateLimiter::new(0, SEC);
    })
    .expect("zero permits");
    assert!(message.contains("at least one permit"), "{message}");

    // A zero window limits nothing.
    let unlimited = RateLimiter::new(1, Duration::ZERO);
    assert!((0..100).all(|_| unlimited.acquire().is_ready()));
}

#[test]
fn a_runtime_shutdown_abandons_pending_acquires() {
    let runtime = Runtime::builder().paused().build().unwrap();
    let limiter = {
        let _entered = runtime.enter();
        RateLimiter::new(1, SEC)
    };
    let granted = limiter.acquire();
    let pending = limiter.acquire();
    runtime.shutdown();
    assert!(granted.is_ready());
    assert!(pending.is_abandoned(), "{pending:?}");
    // The window is still full, and no timer can serve a later acquire either.
    let late = [limiter.acquire(), limiter.acquire()];
    assert!(late.iter().all(Future::is_abandoned), "{late:?}");
}
