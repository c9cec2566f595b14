//! CPU burners at a duty cycle, and a per-request burn on the caller's thread.
//!
//! A burner paces itself on its own thread CPU clock: at wall time `w` since it began it owes `w × duty`
//! of CPU. Behind, it spins one [`SPIN_QUANTUM`] before looking again; ahead, it sleeps until it owes again
//! (at most [`SLICE`]). Deschedulings are made up for, up to [`MAX_DEBT`] of CPU, so a busy
//! machine does not make it burst at 100% for long afterwards.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use brownout_foundation::process::thread_cpu;

use super::SLICE;
use super::state::Shared;

/// Longest a burner spins before it looks at its clock and stop signal again.
pub(crate) const SPIN_QUANTUM: Duration = Duration::from_millis(2);
/// Most CPU a burner still owes after being descheduled; older debt is forgiven.
pub(crate) const MAX_DEBT: Duration = Duration::from_millis(50);
/// A per-request burn gives up after this many times its CPU target in wall time.
pub(crate) const WALL_CAP_FACTOR: u32 = 10;

/// What a burner does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Burn this much more CPU.
    Spin(Duration),
    /// Sleep this long.
    Sleep(Duration),
}

fn secs(x: f64) -> Duration {
    Duration::try_from_secs_f64(x).unwrap_or(if x > 0.0 { Duration::MAX } else { Duration::ZERO })
}

/// CPU owed after `wall` at `duty`.
pub(crate) fn owed(wall: Duration, duty: f64) -> Duration {
    secs(wall.as_secs_f64() * duty)
}

/// The next step of a burner that has burned `used` of CPU over `wall` at `duty` in (0, 1].
pub(crate) fn pace(used: Duration, wall: Duration, duty: f64) -> Step {
    let owed = owed(wall, duty);
    if used <= owed {
        // Spin a whole quantum, even when only a little is owed: the small overshoot is paid back by the
        // next sleep, and the burner never degenerates into a loop of tiny spins and tiny sleeps.
        Step::Spin(SPIN_QUANTUM)
    } else {
        // Ahead by `used - owed` of CPU: at `duty`, that much wall time divided by `duty` pays it off.
        let ahead = (used - owed).as_secs_f64();
        Step::Sleep(secs(ahead / duty).min(SLICE))
    }
}

/// Debt beyond [`MAX_DEBT`] to forgive, as CPU time credited to the burner.
pub(crate) fn forgive(used: Duration, wall: Duration, duty: f64) -> Duration {
    owed(wall, duty).saturating_sub(used).saturating_sub(MAX_DEBT)
}

/// A little work the optimiser cannot remove.
#[inline(never)]
fn spin_once() {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
    for _ in 0..512 {
        x = x.rotate_left(7) ^ x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    black_box(x);
}

/// Spins until this thread's CPU clock has advanced by `cpu` or `stop` says so; returns the clock.
fn spin_for(cpu: Duration, from: Duration, stop: impl Fn() -> bool) -> Duration {
    loop {
        spin_once();
        let now = thread_cpu();
        if now.saturating_sub(from) >= cpu || stop() {
            return now;
        }
    }
}

/// One burner thread, until `end` or a stop.
fn burner(shared: &Shared, duty: f64, end: Instant) {
    let began = Instant::now();
    let base = thread_cpu();
    let mut credit = Duration::ZERO;
    let mut reported = base;
    loop {
        let now = Instant::now();
        if shared.is_stopping() || now >= end {
            break;
        }
        let wall = now - began;
        let clock = thread_cpu();
        let used = clock.saturating_sub(base) + credit;
        credit += forgive(used, wall, duty);
        match pace(clock.saturating_sub(base) + credit, wall, duty) {
            Step::Spin(d) => {
                let after = spin_for(d, clock, || shared.is_stopping());
                let burned = after.saturating_sub(reported);
                reported = after;
                shared.work.fetch_add(burned.as_nanos() as u64, Ordering::Relaxed);
            }
            Step::Sleep(d) => {
                if shared.wait_until(super::deadline(now, d).min(end)) {
                    break;
                }
            }
        }
    }
}

/// Runs `threads` burners until `end` or a stop. Threads that cannot be spawned are logged and skipped.
pub(crate) fn run(shared: &Shared, threads: u32, duty: f64, end: Instant) {
    std::thread::scope(|scope| {
        for i in 0..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("brownout-cpu-{i}"))
                .spawn_scoped(scope, move || burner(shared, duty, end));
            if let Err(e) = spawned {
                tracing::warn!(pressure = %shared.name, error = %e, "cannot start a CPU burner thread");
            }
        }
    });
}

/// Burns `cpu` of CPU time on the calling thread, measured on its own thread CPU clock, and returns the CPU
/// time burned: the request path itself slows, as under a noisy neighbour.
///
/// Bounded: it gives up after ten times `cpu` (plus 10 ms) of wall time, when the thread cannot get the CPU.
/// This blocks the thread; in async code call it where blocking is fine (or accept that it blocks the
/// executor thread, which is the point of the fault).
pub fn burn_cpu(cpu: Duration) -> Duration {
    burn_cpu_while(cpu, || true)
}

/// [`burn_cpu`], but asks `keep_going` about every millisecond of CPU and stops early when it says `false`
/// (for example `|| decider.is_armed()`, so the kill switch cuts a long burn short).
pub fn burn_cpu_while(cpu: Duration, mut keep_going: impl FnMut() -> bool) -> Duration {
    let began = Instant::now();
    let wall_cap = cpu.saturating_mul(WALL_CAP_FACTOR).saturating_add(Duration::from_millis(10));
    let base = thread_cpu();
    let mut burned = Duration::ZERO;
    while burned < cpu && began.elapsed() < wall_cap && keep_going() {
        let quantum = (cpu - burned).min(Duration::from_millis(1));
        let clock = spin_for(quantum, base + burned, || began.elapsed() >= wall_cap);
        burned = clock.saturating_sub(base);
    }
    burned
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn burn_cpu_burns_what_it_is_asked() {
        let burned = burn_cpu(Duration::from_millis(20));
        assert!(burned >= Duration::from_millis(20), "{burned:?}");
        assert!(burned < Duration::from_millis(40), "{burned:?}");
        let stopped = burn_cpu_while(Duration::from_secs(5), || false);
        assert_eq!(stopped, Duration::ZERO);
    }

    /// Simulates a burner on a dedicated core: spinning takes wall time equal to CPU, sleeping overshoots by
    /// `overshoot`. Returns (CPU, wall) after at least `horizon` of wall time.
    fn simulate(duty: f64, overshoot: Duration, horizon: Duration) -> (Duration, Duration, Vec<Step>) {
        let (mut used, mut wall) = (Duration::ZERO, Duration::ZERO);
        let mut steps = Vec::new();
        while wall < horizon {
            let step = pace(used, wall, duty);
            match step {
                Step::Spin(d) => {
                    used += d;
                    wall += d;
                }
                Step::Sleep(d) => wall += d + overshoot,
            }
            steps.push(step);
        }
        (used, wall, steps)
    }

    proptest! {
        #[test]
        fn pacing_converges_on_the_duty(duty in 0.05f64..=1.0, overshoot_us in 0u64..200) {
            let (used, wall, steps) = simulate(duty, Duration::from_micros(overshoot_us), Duration::from_secs(2));
            let achieved = used.as_secs_f64() / wall.as_secs_f64();
            // The pacing is cumulative: the error is at most one step over the whole run.
            prop_assert!((achieved - duty).abs() <= 0.01 + duty * 0.01, "duty {} achieved {}", duty, achieved);
            for step in steps {
                match step {
                    Step::Spin(d) => prop_assert!(d <= SPIN_QUANTUM),
                    Step::Sleep(d) => prop_assert!(d <= SLICE),
                }
            }
        }

        #[test]
        fn pace_and_forgive_never_panic(used_ns in any::<u64>(), wall_ns in any::<u64>(), duty in any::<f64>()) {
            let duty = if duty.is_finite() && duty > 0.0 { duty.min(1.0) } else { 1.0 };
            let (used, wall) = (Duration::from_nanos(used_ns), Duration::from_nanos(wall_ns));
            let _ = pace(used, wall, duty);
            let forgiven = forgive(used, wall, duty);
            // After forgiveness the debt is at most MAX_DEBT (within float rounding of `owed`).
            let debt = owed(wall, duty).saturating_sub(used + forgiven);
            prop_assert!(debt <= MAX_DEBT + Duration::from_micros(1));
        }

        #[test]
        fn owed_is_monotonic_in_wall(a in 0u64..10_000_000_000, b in 0u64..10_000_000_000, duty in 0.01f64..=1.0) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(owed(Duration::from_nanos(lo), duty) <= owed(Duration::from_nanos(hi), duty));
        }
    }
}
