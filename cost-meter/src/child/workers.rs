//! Cost-aware worker counts for a child: the environment variables that thread pools read, set from the
//! budgets' alert level.

use crate::budget::AlertLevel;

/// The variables set for the child: rayon's, OpenMP's (numpy, scikit-learn, PyTorch's CPU kernels), and
/// Brownout's own `BROWNOUT_MAX_WORKERS`, for the job's own pools (a Python `multiprocessing.Pool`, a
/// `--max-workers` default) to read.
pub const WORKER_VARS: [&str; 3] = ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "BROWNOUT_MAX_WORKERS"];

/// The worker count a job gets, from the highest alert level of the budgets covering it.
///
/// - `ok` (or no budget): every core (`cores`);
/// - `warn`: half the cores, at least one;
/// - `critical`: one worker.
///
/// A variable already set in the environment of `cost-meter run`, or given with `--workers N`, wins: the
/// default is only a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Workers {
    /// The worker count.
    pub count: usize,
    /// The level that decided it.
    pub level: AlertLevel,
}

impl Workers {
    /// The count for `level` on a machine of `cores` cores.
    ///
    /// ```
    /// use brownout_cost::budget::AlertLevel;
    /// use brownout_cost::child::Workers;
    /// assert_eq!(Workers::for_level(AlertLevel::Ok, 8).count, 8);
    /// assert_eq!(Workers::for_level(AlertLevel::Warn, 8).count, 4);
    /// assert_eq!(Workers::for_level(AlertLevel::Warn, 1).count, 1);
    /// assert_eq!(Workers::for_level(AlertLevel::Critical, 8).count, 1);
    /// ```
    pub fn for_level(level: AlertLevel, cores: usize) -> Self {
        let cores = cores.max(1);
        let count = match level {
            AlertLevel::Ok => cores,
            AlertLevel::Warn => (cores / 2).max(1),
            AlertLevel::Critical => 1,
        };
        Workers { count, level }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_higher_level_never_gets_more_workers(cores in 0usize..512) {
            let [ok, warn, crit] = [AlertLevel::Ok, AlertLevel::Warn, AlertLevel::Critical]
                .map(|l| Workers::for_level(l, cores).count);
            prop_assert!(ok >= warn && warn >= crit && crit >= 1);
            prop_assert_eq!(ok, cores.max(1));
        }
    }
}
