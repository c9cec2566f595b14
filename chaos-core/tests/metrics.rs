//! Metrics through the `metrics` facade: names, labels and values.

use brownout_chaos::{ChaosConfig, Controller, Environment, RequestFacts};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

fn find<'a>(
    snapshot: &'a [(CompositeKey, DebugValue)],
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(key, value)| {
        let k = key.key();
        let matches = key.kind() == kind
            && k.name() == name
            && labels.iter().all(|(n, v)| k.labels().any(|l| l.key() == *n && l.value() == *v))
            && k.labels().count() == labels.len();
        matches.then_some(value)
    })
}

#[test]
fn injected_overflow_and_active_are_counted_per_rule() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let controller = Controller::builder().environment(Environment::Test).build();
        let yaml = "rules:\n\
            - { name: slow, max_active: 2, sample: { mode: exact, rate: 1.0 }, fault: { latency: { fixed: 1s } } }\n\
            - { name: fail, sample: { mode: every_nth, nth: 2 }, fault: { error: { status: 503 } } }";
        controller.load(ChaosConfig::from_yaml_str(yaml, None).unwrap()).unwrap();
        let mut decider = controller.decider();
        // Four requests while holding every injection: `slow` fits twice, then overflows twice.
        let held: Vec<_> = (0..4).filter_map(|_| decider.decide(&RequestFacts::NONE)).collect();
        let snapshot: Vec<_> = snapshotter.snapshot().into_vec().into_iter().map(|(k, _, _, v)| (k, v)).collect();
        assert_eq!(
            find(
                &snapshot,
                MetricKind::Counter,
                "chaos_faults_injected_total",
                &[("rule", "slow"), ("kind", "latency")]
            ),
            Some(&DebugValue::Counter(2))
        );
        assert_eq!(
            find(&snapshot, MetricKind::Counter, "chaos_faults_injected_total", &[("rule", "fail"), ("kind", "error")]),
            Some(&DebugValue::Counter(2))
        );
        assert_eq!(
            find(&snapshot, MetricKind::Counter, "chaos_faults_overflow_total", &[("rule", "slow")]),
            Some(&DebugValue::Counter(2))
        );
        assert_eq!(
            find(&snapshot, MetricKind::Gauge, "chaos_active_faults", &[("rule", "slow")]),
            Some(&DebugValue::Gauge(2.0.into()))
        );
        assert_eq!(find(&snapshot, MetricKind::Gauge, "chaos_armed", &[]), Some(&DebugValue::Gauge(1.0.into())));
        drop(held);
        controller.disarm();
        // The debugging recorder drains values at each snapshot: the gauge now shows the change since the
        // last one, two slots given back.
        let snapshot: Vec<_> = snapshotter.snapshot().into_vec().into_iter().map(|(k, _, _, v)| (k, v)).collect();
        assert_eq!(
            find(&snapshot, MetricKind::Gauge, "chaos_active_faults", &[("rule", "slow")]),
            Some(&DebugValue::Gauge((-2.0).into()))
        );
        assert_eq!(find(&snapshot, MetricKind::Gauge, "chaos_armed", &[]), Some(&DebugValue::Gauge(0.0.into())));
    });
}

/// `chaos_disarms_total{reason}`: every reason's series exists at 0 from the first arm; each disarm of an armed
/// set counts once under its reason (a disarm of a disarmed set counts nothing); other reasons count as `other`.
#[test]
fn disarms_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let controller = Controller::builder().environment(Environment::Test).build();
        let yaml = "rules: [{ name: r, sample: { mode: exact, rate: 1.0 }, fault: { error: { status: 503 } } }]";
        // A snapshot drains the recorder's counters: take one, read every reason from it.
        let disarms = || {
            let snapshot: Vec<_> = snapshotter.snapshot().into_vec().into_iter().map(|(k, _, _, v)| (k, v)).collect();
            ["kill_switch", "ttl", "slo_guard", "other"].map(|reason| {
                match find(&snapshot, MetricKind::Counter, "chaos_disarms_total", &[("reason", reason)]) {
                    Some(DebugValue::Counter(n)) => Some(*n),
                    _ => None,
                }
            })
        };
        controller.load(ChaosConfig::from_yaml_str(yaml, None).unwrap()).unwrap();
        assert_eq!(disarms(), [Some(0); 4], "every series exists from the first arm");
        controller.disarm_because("slo guard");
        controller.disarm(); // already disarmed: nothing to count
        controller.arm().unwrap();
        controller.disarm();
        controller.arm().unwrap();
        controller.disarm_because("an operator's note");
        // kill_switch, ttl, slo_guard, other
        assert_eq!(disarms(), [Some(1), Some(0), Some(1), Some(1)]);
    });
}
