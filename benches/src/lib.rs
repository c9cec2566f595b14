//! Cases shared by the benchmarks of this package: trivial services, Brownout's layers and the peers',
//! built the same way for the criterion run (`benches/fault_layer.rs`) and the instruction counts
//! (`benches/instructions.rs`).

pub mod alloc;

use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll};

use brownout_chaos::{ChaosConfig, Environment};
use brownout_tower::ChaosHandle;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

/// The error every case can construct (peers need one to inject).
#[derive(Debug, Clone, Copy)]
pub struct Injected;

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected")
    }
}

impl std::error::Error for Injected {}

/// A trivial service over any request type, answering `(self.0)()` at once.
#[derive(Debug)]
pub struct Trivial<T>(pub fn() -> T);

// By hand: a function pointer copies whatever `T` is (a derive would ask `T: Clone`).
impl<T> Clone for Trivial<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Trivial<T> {}

impl<R, T> Service<R> for Trivial<T> {
    type Response = T;
    type Error = Injected;
    type Future = Ready<Result<T, Injected>>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Injected>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, _req: R) -> Self::Future {
        ready(Ok((self.0)()))
    }
}

/// The trivial HTTP service: `200 OK` with an empty body.
pub fn ok200() -> Trivial<Response<()>> {
    Trivial(|| Response::new(()))
}

/// The trivial axum-style HTTP service: `200 OK` with an empty axum `Body` (boxed, but a zero-size body
/// allocates nothing).
pub fn ok200_body() -> Trivial<Response<axum_core::body::Body>> {
    Trivial(|| Response::new(axum_core::body::Body::empty()))
}

/// The trivial generic service: a `u64`.
pub fn zero() -> Trivial<u64> {
    Trivial(|| 0)
}

/// The HTTP request every HTTP case gets: `GET /api/quotes`, built without allocating (a static URI), so
/// the bare case measures the service call rather than request parsing.
#[inline]
pub fn get_quotes() -> Request<()> {
    let mut req = Request::new(());
    *req.uri_mut() = http::Uri::from_static("/api/quotes");
    req
}

/// fail-rs: an unconfigured fail point in `call`.
#[derive(Debug, Clone, Copy)]
pub struct FailPoint<S>(pub S);

impl<S, R> Service<R> for FailPoint<S>
where
    S: Service<R, Error = Injected, Future = Ready<Result<Response<()>, Injected>>>,
{
    type Response = Response<()>;
    type Error = Injected;
    type Future = Ready<Result<Response<()>, Injected>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Injected>> {
        self.0.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: R) -> Self::Future {
        fail::fail_point!("brownout_bench", |_| ready(Err(Injected)));
        self.0.call(req)
    }
}

/// One request: `poll_ready`, `call`, one poll of the future (which must be ready).
#[inline(always)]
pub fn drive<S: Service<R>, R>(svc: &mut S, req: R, cx: &mut Context<'_>) -> Result<S::Response, S::Error> {
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => unreachable!("service not ready"),
    }
    match pin!(svc.call(req)).poll(cx) {
        Poll::Ready(r) => r,
        Poll::Pending => unreachable!("future not ready"),
    }
}

/// A handle loaded with `yaml`, in the test environment.
pub fn handle(yaml: &str) -> ChaosHandle {
    let handle = ChaosHandle::for_environment(Environment::Test);
    handle.load(ChaosConfig::from_yaml_str(yaml, None).expect("bench config parses")).expect("bench config loads");
    handle
}

/// A handle with nothing loaded.
pub fn nothing_armed() -> ChaosHandle {
    ChaosHandle::for_environment(Environment::Test)
}

/// The peers' fault rate in every case, and ours when "armed, not firing".
pub const RATE: f64 = 0.001;

/// One rule at 0.001 with no targeting.
pub const NOT_FIRING: &str =
    "seed: 1\nrules: [{ name: r, sample: { mode: random, rate: 0.001 }, fault: { error: { status: 503 } } }]";
/// One rule at 0.001 matching route and method.
pub const TARGETED: &str = "seed: 1\nrules: [{ name: r, match: { route: '/api/**', method: GET }, \
     sample: { mode: random, rate: 0.001 }, fault: { error: { status: 503 } } }]";
/// One rule firing on every request.
pub const FIRING: &str = "rules: [{ name: r, sample: { mode: exact, rate: 1.0 }, fault: { error: { status: 503 } } }]";

/// `n` rules on route and method that cannot match `GET /api/quotes`, in turn: another first segment
/// (`/r{i}/**`, GET), the right route and another method (`/api/**`, POST), and a sibling route under the same
/// first segment (`/api/q{i}/**`, GET). Each at random 0.001.
pub fn route_method_rules(n: usize) -> String {
    let mut yaml = String::from("seed: 1\nrules:\n");
    for i in 0..n {
        let (route, method) = match i % 3 {
            0 => (format!("/r{i}/**"), "GET"),
            1 => ("/api/**".to_owned(), "POST"),
            _ => (format!("/api/q{i}/**"), "GET"),
        };
        yaml.push_str(&format!(
            "  - {{ name: r{i}, match: {{ route: '{route}', method: {method} }}, \
             sample: {{ mode: random, rate: 0.001 }}, fault: {{ error: {{ status: 503 }} }} }}\n"
        ));
    }
    yaml
}

/// `n` untargeted random rules, each at 0.001 / `n` (together about one request in a thousand, as
/// [`NOT_FIRING`]).
pub fn random_rules(n: usize) -> String {
    let rate = RATE / n as f64;
    let mut yaml = String::from("seed: 1\nrules:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{ name: r{i}, sample: {{ mode: random, rate: {rate} }}, fault: {{ error: {{ status: 503 }} }} }}\n"
        ));
    }
    yaml
}

/// seatbelt 0.11's chaos injection at [`RATE`]. Its context needs a clock, which injection never reads; the
/// returned guard keeps the clock's driver alive.
pub fn seatbelt<S>(inner: S) -> (impl Service<Request<()>, Response = Response<()>, Error = Injected>, impl Sized)
where
    S: Service<Request<()>, Response = Response<()>, Error = Injected> + Send + Sync + Clone + 'static,
    S::Future: Send,
{
    let (clock, driver) = tick::runtime::InactiveClock::default().activate(std::task::Waker::noop().clone());
    let ctx: seatbelt::ResilienceContext<Request<()>, Result<Response<()>, Injected>> =
        seatbelt::ResilienceContext::new(&clock).name("bench");
    let layer = seatbelt::chaos::injection::Injection::layer("chaos", &ctx).rate(RATE).output_error(Injected);
    (layer.layer(inner), (driver, clock))
}

/// tower-fault 0.0.5's `ErrorLayer` at [`RATE`].
pub fn tower_fault<S>(inner: S) -> impl Service<Request<()>, Response = Response<()>, Error = Injected>
where
    S: Service<Request<()>, Response = Response<()>, Error = Injected> + Send + 'static,
    S::Future: Send + 'static,
{
    tower_fault::error::ErrorLayer::new(RATE, |_: &Request<()>| Injected).layer(inner)
}

/// tower-resilience-chaos 0.14 at an error rate of [`RATE`].
pub fn tower_resilience_chaos<S>(inner: S) -> impl Service<Request<()>, Response = Response<()>, Error = Injected>
where
    S: Service<Request<()>, Response = Response<()>, Error = Injected> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    tower_resilience_chaos::ChaosLayer::builder()
        .name("chaos")
        .error_rate(RATE)
        .error_fn(|_: &Request<()>| Injected)
        .build()
        .layer(inner)
}

/// The names of every case, `group/case`, as the benches report them.
pub const CASES: &[&str] = &[
    "generic_u64/bare",
    "generic_u64/brownout_nothing_armed",
    "generic_u64/brownout_armed_not_firing",
    "http/bare",
    "http/brownout_nothing_armed",
    "http/brownout_armed_not_firing",
    "http/brownout_route_method_not_firing",
    "http/brownout_1_route_method_rules_cannot_match",
    "http/brownout_10_route_method_rules_cannot_match",
    "http/brownout_100_route_method_rules_cannot_match",
    "http/brownout_1000_route_method_rules_cannot_match",
    "http/brownout_100_random_rules_not_firing",
    "http/brownout_firing_503",
    "http/brownout_firing_503_subscriber_brownout_off",
    "http/brownout_firing_503_subscriber_info",
    "http/seatbelt_injection",
    "http/tower_fault_error",
    "http/tower_resilience_chaos",
    "http/fail_rs_unconfigured",
    "http_body/bare",
    "http_body/brownout_nothing_armed",
    "http_body/brownout_nothing_armed_same_body",
    "http_body/brownout_armed_not_firing_same_body",
    "http_body/brownout_route_method_not_firing_same_body",
    "http_body/brownout_1000_route_method_rules_cannot_match_same_body",
    "http_body/brownout_100_random_rules_not_firing_same_body",
    "fallback_u64/bare",
    "fallback_u64/brownout",
    "fallback_u64/tower_resilience",
    "fallback_http/bare",
    "fallback_http/brownout_http",
    "fallback_http/brownout_without_headers",
];

fn repeat<S: Service<R>, R>(mut svc: S, make: impl Fn() -> R, n: u64) -> u64 {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut ok = 0;
    for _ in 0..n {
        ok += u64::from(std::hint::black_box(drive(std::hint::black_box(&mut svc), make(), &mut cx)).is_ok());
    }
    ok
}

/// Calls made before the counted ones of a [`measured`] bench: a first call may set up what later ones reuse (a
/// recorder's handle, a cache entry).
pub const WARM_UP: u64 = 16;

fn many(yaml: &str, n: u64) -> u64 {
    repeat(handle(yaml).http_layer().layer(ok200()), get_quotes, n)
}

/// [`FIRING`] under a `tracing` subscriber with the filter `directives` that formats every event it keeps
/// (the `fmt` layer, into a sink): `info,brownout=off` turns the span events off, `info` formats each one.
fn firing_with_subscriber(directives: &str, n: u64) -> u64 {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(directives))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    tracing::subscriber::with_default(subscriber, || repeat(handle(FIRING).http_layer().layer(ok200()), get_quotes, n))
}

/// Runs case `name` `n` times and returns how many calls succeeded; `None` for an unknown name.
pub fn run_case(name: &str, n: u64) -> Option<u64> {
    let u = || 7u64;
    Some(match name {
        "generic_u64/bare" => repeat(zero(), u, n),
        "generic_u64/brownout_nothing_armed" => repeat(nothing_armed().layer().layer(zero()), u, n),
        "generic_u64/brownout_armed_not_firing" => repeat(handle(NOT_FIRING).layer().layer(zero()), u, n),
        // The fallback's pass-through path: the primary answers; the fallback is ready but not called.
        "fallback_u64/bare" => repeat(zero(), u, n),
        "fallback_u64/brownout" => repeat(brownout_tower::FallbackLayer::new(zero()).layer(zero()), u, n),
        "fallback_u64/tower_resilience" => {
            let layer = tower_resilience_fallback::FallbackLayer::<u64, u64, Injected>::value_fn(|| 0);
            repeat(layer.layer(zero()), u, n)
        }
        "fallback_http/bare" => repeat(ok200(), get_quotes, n),
        "fallback_http/brownout_http" => {
            repeat(brownout_tower::FallbackLayer::http(ok200()).layer(ok200()), get_quotes, n)
        }
        "fallback_http/brownout_without_headers" => {
            repeat(brownout_tower::FallbackLayer::http(ok200()).without_headers().layer(ok200()), get_quotes, n)
        }
        "http/bare" => repeat(ok200(), get_quotes, n),
        "http/brownout_nothing_armed" => repeat(nothing_armed().http_layer().layer(ok200()), get_quotes, n),
        "http/brownout_armed_not_firing" => repeat(handle(NOT_FIRING).http_layer().layer(ok200()), get_quotes, n),
        "http/brownout_route_method_not_firing" => repeat(handle(TARGETED).http_layer().layer(ok200()), get_quotes, n),
        "http/brownout_1_route_method_rules_cannot_match" => many(&route_method_rules(1), n),
        "http/brownout_10_route_method_rules_cannot_match" => many(&route_method_rules(10), n),
        "http/brownout_100_route_method_rules_cannot_match" => many(&route_method_rules(100), n),
        "http/brownout_1000_route_method_rules_cannot_match" => many(&route_method_rules(1_000), n),
        "http/brownout_100_random_rules_not_firing" => many(&random_rules(100), n),
        "http/brownout_firing_503" => repeat(handle(FIRING).http_layer().layer(ok200()), get_quotes, n),
        "http/brownout_firing_503_subscriber_brownout_off" => firing_with_subscriber("info,brownout=off", n),
        "http/brownout_firing_503_subscriber_info" => firing_with_subscriber("info", n),
        "http/seatbelt_injection" => {
            let (svc, _guard) = seatbelt(ok200());
            repeat(svc, get_quotes, n)
        }
        "http/tower_fault_error" => repeat(tower_fault(ok200()), get_quotes, n),
        "http/tower_resilience_chaos" => repeat(tower_resilience_chaos(ok200()), get_quotes, n),
        "http/fail_rs_unconfigured" => repeat(FailPoint(ok200()), get_quotes, n),
        "http_body/bare" => repeat(ok200_body(), get_quotes, n),
        "http_body/brownout_nothing_armed" => repeat(nothing_armed().http_layer().layer(ok200_body()), get_quotes, n),
        "http_body/brownout_nothing_armed_same_body" => {
            repeat(nothing_armed().http_layer().same_body().layer(ok200_body()), get_quotes, n)
        }
        "http_body/brownout_armed_not_firing_same_body" => {
            repeat(handle(NOT_FIRING).http_layer().same_body().layer(ok200_body()), get_quotes, n)
        }
        "http_body/brownout_route_method_not_firing_same_body" => {
            repeat(handle(TARGETED).http_layer().same_body().layer(ok200_body()), get_quotes, n)
        }
        "http_body/brownout_1000_route_method_rules_cannot_match_same_body" => {
            let svc = handle(&route_method_rules(1_000)).http_layer().same_body().layer(ok200_body());
            repeat(svc, get_quotes, n)
        }
        "http_body/brownout_100_random_rules_not_firing_same_body" => {
            repeat(handle(&random_rules(100)).http_layer().same_body().layer(ok200_body()), get_quotes, n)
        }
        _ => return None,
    })
}

/// `Some((case, n))` when this binary was started as `--run CASE N`: the child process that callgrind counts.
pub fn run_request(args: &[String]) -> Option<(&str, u64)> {
    match args {
        [_, flag, case, n, ..] if flag == "--run" => Some((case, n.parse().expect("a count after --run CASE"))),
        _ => None,
    }
}

/// Instructions of one call of `case`: the binary re-run under callgrind with `short` and `long` calls, the
/// difference divided by `long - short`, so start-up and set-up cancel out. The whole process is counted: for
/// cases whose set-up takes the same instructions on every run (see [`callgrind_per_call_measured`] for the
/// others).
pub fn callgrind_per_call(case: &str, short: u64, long: u64) -> f64 {
    (callgrind_instructions(case, long, false) - callgrind_instructions(case, short, false)) as f64
        / (long - short) as f64
}

/// [`callgrind_per_call`] counting only inside [`measured`], on any thread: for cases whose set-up or helper
/// threads move with the run's wall time rather than with its calls — the TSC calibration of `quanta` (the
/// Prometheus recorder's clock, cost-meter's) loops on the clock until it settles, and cost-meter's memory
/// tick thread wakes every millisecond; under valgrind either moved a run by up to 10 million instructions.
pub fn callgrind_per_call_measured(case: &str, short: u64, long: u64) -> f64 {
    (callgrind_instructions(case, long, true) - callgrind_instructions(case, short, true)) as f64
        / (long - short) as f64
}

/// Runs `f`: what [`callgrind_per_call_measured`] counts. Put a case's loop in it, after its set-up and a few
/// warm-up calls ([`WARM_UP`]) when a first call initialises something lazily.
#[inline(never)]
pub fn measured<R>(f: impl FnOnce() -> R) -> R {
    std::hint::black_box(f())
}

/// Instructions callgrind counts for this bench binary re-run as `--run CASE N` (the case run `n` times): the
/// whole process, or only inside [`measured`].
fn callgrind_instructions(case: &str, n: u64, only_measured: bool) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let mut valgrind = std::process::Command::new("valgrind");
    valgrind.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
    if only_measured {
        valgrind.arg("--toggle-collect=*benches::measured*");
    }
    let out = valgrind
        .arg(&exe)
        .args(["--run", case, &n.to_string()])
        .output()
        .expect("valgrind is installed (apt-get install valgrind)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let count = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count for {case}: {stderr}"));
    assert!(count > 0 || !only_measured, "{case}: nothing ran inside `benches::measured`");
    count
}
