//! Per-call cost of the fault layers around a trivial service whose future is ready at once, Brownout beside
//! its peers in the same run. Every case is driven by hand (`poll_ready`, `call`, one poll with a no-op
//! waker), so no runtime cost is measured.
//!
//! Run: `cargo bench -p benches --bench fault_layer`

use std::hint::black_box;
use std::task::{Context, Waker};

use benches::*;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use tower_layer::Layer;
use tower_service::Service;

fn case<S, R>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut svc: S, make: impl Fn() -> R + Copy)
where
    S: Service<R>,
{
    let mut cx = Context::from_waker(Waker::noop());
    g.bench_function(name, |b| b.iter(|| black_box(drive(black_box(&mut svc), make(), &mut cx)).is_ok()));
}

fn generic(c: &mut Criterion) {
    let mut g = c.benchmark_group("fault_layer/generic_u64");
    let u = || 7u64;
    case(&mut g, "bare", zero(), u);
    case(&mut g, "brownout_nothing_armed", nothing_armed().layer().layer(zero()), u);
    case(&mut g, "brownout_armed_not_firing", handle(NOT_FIRING).layer().layer(zero()), u);
    case(&mut g, "brownout_firing_error", handle(FIRING).layer().layer(zero()), u);
    g.finish();
}

fn http(c: &mut Criterion) {
    let mut g = c.benchmark_group("fault_layer/http");
    case(&mut g, "bare", ok200(), get_quotes);
    case(&mut g, "brownout_nothing_armed", nothing_armed().http_layer().layer(ok200()), get_quotes);
    case(&mut g, "brownout_armed_not_firing", handle(NOT_FIRING).http_layer().layer(ok200()), get_quotes);
    case(&mut g, "brownout_route_method_not_firing", handle(TARGETED).http_layer().layer(ok200()), get_quotes);
    case(&mut g, "brownout_firing_503", handle(FIRING).http_layer().layer(ok200()), get_quotes);
    let (svc, _guard) = seatbelt(ok200());
    case(&mut g, "seatbelt_injection", svc, get_quotes);
    case(&mut g, "tower_fault_error", tower_fault(ok200()), get_quotes);
    case(&mut g, "tower_resilience_chaos", tower_resilience_chaos(ok200()), get_quotes);
    assert!(fail::has_failpoints(), "fail built without `failpoints`: the point would compile to nothing");
    case(&mut g, "fail_rs_unconfigured", FailPoint(ok200()), get_quotes);
    g.finish();
}

criterion_group!(benches, generic, http);
criterion_main!(benches);
