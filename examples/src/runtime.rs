//! The examples' multi-threaded tokio runtime, with cost-meter's park hooks: the CPU cost-meter apportions to
//! each request's polls then knows a parked worker's sleep as sleep, and each worker settles at its park and
//! when it stops.

/// A multi-threaded runtime with every driver enabled and cost-meter's hooks.
pub fn with_cost_hooks() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(brownout_cost::on_thread_park)
        .on_thread_unpark(brownout_cost::on_thread_unpark)
        .on_thread_stop(brownout_cost::settle_thread)
        .build()
}
