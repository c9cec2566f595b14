//! The arithmetic of apportioned CPU: one interval of a thread's CPU time split over the polls that ran in it,
//! in proportion to each poll's time as the TSC measured it.

/// What an interval's polls are charged in all, from the thread's CPU time over the interval (`cpu_ns`), the
/// polls' TSC time (`polled_ns`, and in ticks `polled_ticks`) and the TSC time of the short gaps between them
/// (`short_gap_ticks`: the runtime's own work between polls).
///
/// The polls and the short gaps are taken to have lost the CPU (preempted, blocked in a system call) at the
/// same rate, so the polls' CPU is the thread's CPU times their part of that runnable time; the long gaps are
/// taken as parked, off the CPU (their TSC time counts for nothing). The total is never more than the polls'
/// own TSC time, nor than the thread's CPU: a thread CPU time above it ran outside metered polls and is
/// nobody's.
pub(crate) fn interval_total(cpu_ns: u64, polled_ns: u64, polled_ticks: u64, short_gap_ticks: u64) -> u64 {
    let runnable = u128::from(polled_ticks) + u128::from(short_gap_ticks);
    if runnable == 0 {
        return 0;
    }
    let polls_cpu = (u128::from(cpu_ns) * u128::from(polled_ticks) / runnable) as u64;
    polls_cpu.min(polled_ns)
}

/// Splits a total over parts in proportion to their weights, exactly: the parts sum to the total (when the
/// weights do not all weigh zero), none is negative, and each is within one nanosecond of its exact share.
///
/// Each part is the difference of two cumulative shares rounded down, `⌊total·Wₖ/W⌋ − ⌊total·Wₖ₋₁/W⌋`, so
/// the sum telescopes to `⌊total·W/W⌋ = total` whatever the order.
#[derive(Debug)]
pub(crate) struct Split {
    total: u64,
    weight: u64,
    cumulative: u64,
    given: u64,
}

impl Split {
    /// Splits `total` over parts whose weights sum to `weight`.
    pub(crate) fn new(total: u64, weight: u64) -> Self {
        Split { total, weight, cumulative: 0, given: 0 }
    }

    /// The next part's share, for its `weight` (the weights given must sum to the one given to `new`).
    pub(crate) fn part(&mut self, weight: u64) -> u64 {
        if self.weight == 0 {
            return 0;
        }
        self.cumulative = self.cumulative.saturating_add(weight).min(self.weight);
        let upto = (u128::from(self.total) * u128::from(self.cumulative) / u128::from(self.weight)) as u64;
        let part = upto - self.given;
        self.given = upto;
        part
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_split_at_the_edges() {
        let mut s = Split::new(10, 3);
        assert_eq!([s.part(1), s.part(1), s.part(1)], [3, 3, 4]);
        let mut s = Split::new(10, 0);
        assert_eq!([s.part(0), s.part(0)], [0, 0]);
        let mut s = Split::new(u64::MAX, u64::MAX);
        assert_eq!([s.part(u64::MAX - 1), s.part(1)], [u64::MAX - 1, 1]);
        assert_eq!(interval_total(5, 7, 7, 0), 5, "preempted: the thread's CPU");
        assert_eq!(interval_total(9, 7, 7, 0), 7, "more CPU than polls: the polls' time");
        assert_eq!(interval_total(8, 9, 6, 2), 6, "short gaps take their part of the CPU");
        assert_eq!(interval_total(8, 0, 0, 5), 0);
    }

    proptest! {
        #[test]
        fn shares_sum_to_the_interval_total_and_follow_the_weights(
            cpu_ns in 0u64..10_000_000_000,
            weights in proptest::collection::vec(0u64..5_000_000_000, 1..64),
            ns_per_tick in 0.25f64..4.0,
            short_gap_ticks in 0u64..1_000_000_000,
        ) {
            let weight: u64 = weights.iter().sum();
            let polled_ns = (weight as f64 * ns_per_tick) as u64;
            let total = interval_total(cpu_ns, polled_ns, weight, short_gap_ticks);
            prop_assert!(total <= polled_ns);
            let mut split = Split::new(total, weight);
            let parts: Vec<u64> = weights.iter().map(|w| split.part(*w)).collect();
            if weight > 0 {
                prop_assert_eq!(parts.iter().sum::<u64>(), total);
            } else {
                prop_assert!(parts.iter().all(|p| *p == 0));
            }
            prop_assert!(total <= cpu_ns);
            for (part, w) in parts.iter().zip(&weights) {
                // u64 parts are never negative; each is within 1 ns of its exact share.
                let exact = total as f64 * *w as f64 / weight.max(1) as f64;
                prop_assert!((*part as f64 - exact).abs() <= 1.0 + exact * 1e-12, "{} vs {}", part, exact);
            }
        }
    }
}
