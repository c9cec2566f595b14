//! The demo as a GameDay target: the service on a loopback port, its two fault switches (`provider`, the
//! quote provider's calls; `store`, the order store's), its breaker, flags, triggers and cost, and the
//! orders check after each scenario (every acknowledged order applied, once).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use brownout_chaos::Environment;
use brownout_gameday::{Client, InProcess, Plan, Settled};
use brownout_tower::ChaosHandle;
use serde_json::json;

use super::{Options, app, degrade, open_orders};

/// How the demo is built for a run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Off with `--without-fallback`: no cached quote, no orders journal (the dependency scenarios then fail).
    pub fallback: bool,
    /// Off with `--without-degrade`: no triggers, nothing degrades by itself (the pressure scenarios then fail).
    pub degrade: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { fallback: true, degrade: true }
    }
}

/// Aborts the server's task when the target is dropped.
#[derive(Debug)]
struct Server(tokio::task::AbortHandle);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the demo on a loopback port, its orders stored under `data`, and returns it as a target. Inside a
/// tokio runtime.
pub async fn target(plan: &Plan, data: &Path, options: &DemoOptions) -> Result<InProcess, String> {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let flags = brownout_degrade::Flags::new();
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let orders = open_orders(data, &flags, options.fallback, Environment::Test)
        .map_err(|e| format!("{}: {e}", data.display()))?;
    let demo_options = Options {
        timeout: plan.service.dependency_timeout.unwrap_or(Options::default().timeout),
        fallback: options.fallback,
        flags: Some(flags.clone()),
        orders: Some(orders.orders.clone()),
        ..Options::default()
    };
    let demo = app(&chaos, &demo_options);
    let degradation = if options.degrade {
        let mut signals = degrade::Signals::new(demo.breaker.clone(), Some(orders.store_calls.clone()));
        signals.memory_budget = plan.service.memory_budget_mib.map(|mib| mib << 20);
        Some(degrade::Degradation::wire(&flags, signals)?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(axum::serve(listener, tower::make::Shared::new(demo.app.clone())).into_future());
    let mut name = format!("the demo service on {addr}");
    if !options.fallback {
        name.push_str(", WITHOUT the fallbacks");
    }
    if !options.degrade {
        name.push_str(", WITHOUT the degrade triggers");
    }
    let counters = demo.counters.clone();
    let cost = demo.cost.clone();
    let store = orders.orders.clone();
    let checked = orders.orders.clone();
    let target = InProcess::new(Client::http(&format!("http://{addr}"))?)
        .named(name)
        .switch("provider", chaos)
        .switch("store", orders.store_chaos.clone())
        .calls("provider", move || counters.provider_calls.load(Ordering::Relaxed))
        .calls("store", move || store.store_calls())
        .breaker(demo.breaker.clone())
        .flags(flags)
        .cost(move || cost.sample())
        .settle(move || {
            let orders = checked.clone();
            Box::pin(async move {
                // Nothing lost, nothing twice: every acknowledged order is applied, once, when the journal has
                // drained. Applied counts rows inserted under each id's primary key, so none is applied twice;
                // more applied than acknowledged is a store call that committed after its timeout while the
                // caller heard of a failure: not lost, not twice.
                let drained = orders.drained(Duration::from_secs(5)).await;
                let stats = orders.stats();
                let mut failures = Vec::new();
                if !drained || stats.applied < stats.accepted {
                    failures.push(format!(
                        "orders: {} acknowledged, {} applied, {} still in the journal",
                        stats.accepted, stats.applied, stats.backlog
                    ));
                }
                Settled::default().failures(failures).details(json!({ "orders": stats }))
            })
        })
        .hold(Server(server.abort_handle()))
        .hold(orders)
        .hold(std::sync::Mutex::new(degradation));
    Ok(target)
}
