//! What each fuzz target does with one input, shared by the libFuzzer targets (`fuzz_targets/`, nightly) and
//! the stable replay of the committed corpus (`tests/tests/fuzz_corpus.rs`, which includes this file).
//!
//! Every function takes arbitrary bytes and must never panic: Brownout's principle 6 ("nothing panics on
//! input"). Where a parse succeeds, the value goes one step further (the chaos config is compiled, the budget
//! becomes Prometheus rules, the flag file is edited) so the fuzzer reaches the code behind the parser too.

use std::convert::Infallible;
use std::time::Duration;

use brownout_chaos::{ChaosConfig, Controller, Environment};
use brownout_cost::budget::{Budget, BudgetSet, promtool_test_yaml, rules_yaml};
use brownout_degrade::flags::{FlagFile, edit};
use brownout_tower::{ChaosHandle, HttpChaos};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::Full;
use tower::ServiceExt;

/// The chaos config, as YAML and as JSON; a config that parses is compiled in `dev` and in `prod` (never armed
/// with pressure, and never reading a token file the input names).
pub fn chaos_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [ChaosConfig::from_yaml_str(text, None), ChaosConfig::from_json_str(text, None)] {
        match parsed {
            Ok(config) => compile(config),
            Err(e) => assert!(!e.to_string().is_empty(), "an error says why"),
        }
    }
}

fn compile(mut config: ChaosConfig) {
    if let Some(header) = config.header_faults.as_mut() {
        header.token_file = None; // an input must not make the fuzzer read /dev/zero
    }
    // Disarmed, the whole config is validated (pressure included) and nothing starts.
    let armed = std::mem::replace(&mut config.armed, false);
    for env in [Environment::Dev, Environment::Prod] {
        let controller = Controller::builder().environment(env).build();
        if controller.load(config.clone()).is_ok() {
            assert!(controller.snapshot().rules.len() >= config.rules.len());
        }
    }
    // Armed as the input asks, without its pressure (a fuzz input must not start burner threads or ballast).
    config.pressure.clear();
    config.armed = armed;
    let controller = Controller::builder().environment(Environment::Dev).build();
    if controller.load(config).is_ok() {
        controller.disarm();
    }
}

/// The flag file; for a file that parses, every flag's `value:` is set to its default and removed again with
/// the editor behind `degrade set` (which re-parses the result before writing it).
pub fn flag_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = FlagFile::parse(text, None) else { return };
    for (name, spec) in &file.flags {
        let value = spec.kind.format(spec.default);
        if let Some(edited) = edit::set_value(text, name, Some(&value)) {
            let _ = FlagFile::parse(&edited, None);
            let _ = edit::set_value(&edited, name, None);
        }
    }
}

/// One budget file; a budget that validates becomes Prometheus rules and a `promtool test rules` file.
pub fn budget_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Budget::parse(text, None) {
        Ok(budget) => {
            let test = promtool_test_yaml(&budget, "rules.yaml");
            assert!(!test.is_empty());
            if let Ok(set) = BudgetSet::new(vec![budget]) {
                assert!(rules_yaml(&set).contains("groups:"));
            }
        }
        Err(errors) => assert!(!errors.to_string().is_empty(), "an error says why"),
    }
}

/// The token the header-fault rule set accepts (16 characters or more).
pub const TOKEN: &str = "fuzz-token-0123456789";

/// The largest delay a header may ask for (paused time: it costs nothing).
const MAX_DELAY: Duration = Duration::from_secs(2);

/// `x-chaos-*` headers through an `HttpChaos` service with header faults on. The first byte chooses which
/// headers are present and whether the token is the right one; the rest, split at `\n`, gives the values of
/// `x-chaos-delay-ms`, `x-chaos-abort-status` and (with a wrong token) `x-chaos-token`. The service runs on a
/// paused current-thread runtime, so an asked delay takes no time.
pub fn chaos_headers(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut parts = rest.split(|&b| b == b'\n');
    let (delay, abort, token) = (parts.next(), parts.next(), parts.next());
    let mut request = http::Request::get("/api/quotes/ABC").body(()).expect("a constant request");
    let headers = request.headers_mut();
    let mut put = |name: &'static str, value: Option<&[u8]>| {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.append(HeaderName::from_static(name), value);
        }
    };
    if mode & 1 != 0 {
        put("x-chaos-delay-ms", delay);
    }
    if mode & 2 != 0 {
        put("x-chaos-abort-status", abort);
    }
    let right_token = mode & 4 != 0;
    put("x-chaos-token", if right_token { Some(TOKEN.as_bytes()) } else { token });
    let authorised = request.headers().get("x-chaos-token").is_some_and(|t| t.as_bytes() == TOKEN.as_bytes());
    let asked =
        request.headers().contains_key("x-chaos-delay-ms") || request.headers().contains_key("x-chaos-abort-status");

    HEADER_RIG.with(|(runtime, handle)| {
        let service = HttpChaos::new(
            tower::service_fn(|_: http::Request<()>| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            }),
            handle,
        );
        let response = runtime.block_on(service.oneshot(request)).expect("the inner service never fails");
        let injected = response.headers().contains_key(brownout_chaos::INJECTED_HEADER);
        if !(authorised && asked) {
            assert_eq!(response.status(), 200, "without the token (or without a fault header) nothing is injected");
            assert!(!injected);
        } else if response.status() == 400 {
            // A malformed value is answered by the chaos layer, and says so (`x-chaos-injected: header`).
            assert_eq!(
                response.headers().get(brownout_chaos::INJECTED_HEADER).map(|v| v.as_bytes()),
                Some(&b"header"[..])
            );
        }
    });
}

thread_local! {
    /// A paused current-thread runtime and a chaos handle whose only rules are the header faults.
    static HEADER_RIG: (tokio::runtime::Runtime, ChaosHandle) = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime");
        let token_file = std::env::temp_dir().join(format!("brownout-fuzz-token-{}", std::process::id()));
        std::fs::write(&token_file, TOKEN).expect("a writable temp dir");
        let yaml = format!(
            "experiment: fuzz-headers\nheader_faults: {{ enabled: true, token_file: {:?}, max_delay: {}ms }}\nrules: []\n",
            token_file.display().to_string(),
            MAX_DELAY.as_millis()
        );
        let config = ChaosConfig::from_yaml_str(&yaml, None).expect("the rig's config parses");
        // The handle's timers need the runtime's clock: build it inside.
        let handle = runtime.block_on(async {
            let handle = ChaosHandle::for_environment(Environment::Dev);
            handle.load(config).expect("the rig's config loads");
            handle
        });
        (runtime, handle)
    };
}
