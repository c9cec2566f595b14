//! The degrade-mode log lines of trigger and manual flips, in a test binary of their own: `tracing` caches
//! each callsite's interest process-wide, and a test without a subscriber running at the same time in the same
//! process could leave these callsites silenced for this one (it failed about one run in four beside the other
//! trigger tests).

mod common;

use std::time::Duration;

use brownout_degrade::Flags;
use brownout_degrade::flags::FlagKind;
use brownout_tower::degrade::TriggerTask;
use common::{Logs, dial, paused, set};
use tokio::time::sleep;

const FLAG: &str = "quotes.cached";

fn flags() -> Flags {
    let flags = Flags::new();
    flags.define(FLAG, FlagKind::Bool, "false").unwrap();
    flags
}

#[test]
fn every_flip_logs_degrade_mode_with_by_trigger_or_by_manual() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, || {
        paused().block_on(async {
            let flags = flags();
            let (value, signal) = dial();
            let _trigger = TriggerTask::builder("dial", FLAG)
                .on_above(0.5)
                .min_hold(Duration::ZERO)
                .spawn(&flags, signal)
                .unwrap();
            set(&value, 1.0);
            sleep(Duration::from_millis(500)).await;
            set(&value, 0.0);
            sleep(Duration::from_secs(1)).await;
            flags.set(FLAG, "true").unwrap();
        })
    });
    let changes: Vec<String> = logs.lines().into_iter().filter(|l| l.contains("degrade_mode")).collect();
    assert_eq!(changes.len(), 3, "{changes:#?}");
    let has = |line: &str, parts: &[&str]| parts.iter().all(|p| line.contains(p));
    assert!(has(&changes[0], &["degrade_mode=ON", "flag=quotes.cached", "by=trigger"]), "{}", changes[0]);
    assert!(has(&changes[1], &["degrade_mode=OFF", "flag=quotes.cached", "by=trigger"]), "{}", changes[1]);
    assert!(has(&changes[2], &["degrade_mode=ON", "flag=quotes.cached", "by=manual"]), "{}", changes[2]);
    let flips: Vec<String> = logs.lines().into_iter().filter(|l| l.contains("degrade trigger flipped")).collect();
    assert!(has(&flips[0], &["trigger=dial", "state=\"on\"", "signal=1.0"]), "{flips:#?}");
}
