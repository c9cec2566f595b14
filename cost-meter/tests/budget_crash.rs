//! Crash safety: a checkpoint or audit write interrupted at any point leaves a readable file with the old state
//! (or the new one, once the rename happened), and a corrupt checkpoint is kept aside, never zeroed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use brownout_cost::budget::checkpoint::{self, BudgetState, Checkpoint, CheckpointError};
use brownout_cost::budget::{AlertLevel, AuditEntry, AuditEvent, AuditLog, Month, Usage, read_audit};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cost-meter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn state(cpu: f64, level: AlertLevel) -> Checkpoint {
    let mut c = Checkpoint::new(Month::new(2026, 11).unwrap());
    c.budgets.insert("research".into(), BudgetState::new(Usage::new(cpu, cpu * 3.0), level));
    c.budgets.insert("ci".into(), BudgetState::new(Usage::new(1.0 / 3.0, 0.0), AlertLevel::Ok));
    c
}

const NOW: Duration = Duration::from_secs(1_795_000_000);

fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    checkpoint::load(path, UNIX_EPOCH + NOW)
}

fn same_state(a: &Checkpoint, b: &Checkpoint) -> bool {
    a.month == b.month && a.budgets == b.budgets
}

#[test]
fn an_interrupted_checkpoint_write_leaves_the_old_state_at_every_byte() {
    let dir = temp("ckpt-interrupt");
    let path = dir.join("checkpoint.json");
    let old = state(1234.5, AlertLevel::Warn);
    checkpoint::save(&path, &old, UNIX_EPOCH + NOW).unwrap();
    let new = state(1700.25, AlertLevel::Critical);
    let mut bytes = serde_json::to_vec_pretty(&new).unwrap();
    bytes.push(b'\n');
    // The write is: create a temporary file (`.checkpoint.json.XXXXXX.tmp`), write bytes (cut anywhere),
    // fsync, rename, fsync dir. Before the rename, the temporary file holds any prefix and the checkpoint is
    // untouched.
    let debris = dir.join(".checkpoint.json.a1b2c3.tmp");
    for len in 0..=bytes.len() {
        std::fs::write(&debris, &bytes[..len]).unwrap();
        let loaded = load(&path).unwrap().expect("the old checkpoint is there");
        assert!(same_state(&loaded, &old), "cut at byte {len}");
    }
    // The next save writes past the debris (another, unique name) and wins.
    checkpoint::save(&path, &new, UNIX_EPOCH + NOW).unwrap();
    assert!(same_state(&load(&path).unwrap().unwrap(), &new));
    let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, [".checkpoint.json.a1b2c3.tmp", "checkpoint.json"], "the rename consumed its temporary file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_checkpoint_is_kept_aside_and_reported_never_zeroed() {
    let dir = temp("ckpt-corrupt");
    let path = dir.join("checkpoint.json");
    let good = state(42.0, AlertLevel::Ok);
    checkpoint::save(&path, &good, UNIX_EPOCH + NOW).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        std::fs::write(&path, prefix).unwrap();
        match load(&path) {
            // only the trailing whitespace was lost: still the whole checkpoint
            Ok(Some(c)) => assert!(same_state(&c, &good) && bytes[len..].iter().all(u8::is_ascii_whitespace)),
            Ok(None) => panic!("cut at {len}: a damaged checkpoint read as none"),
            Err(CheckpointError::Corrupt { moved_to: Some(aside), reason, .. }) => {
                assert!(!path.exists(), "moved, not left to be overwritten");
                assert_eq!(std::fs::read(&aside).unwrap(), prefix, "kept as it was");
                assert!(!reason.is_empty());
                std::fs::remove_file(aside).unwrap();
            }
            Err(e) => panic!("cut at {len}: {e}"),
        }
    }
    // A hand edit with a negative usage is corrupt too, and the message says where it went.
    std::fs::write(&path, String::from_utf8(bytes).unwrap().replace("42.0", "-42.0")).unwrap();
    let err = load(&path).unwrap_err();
    assert!(err.to_string().contains("kept aside as") && err.to_string().contains("negative"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reading_a_damaged_checkpoint_reports_it_and_changes_nothing() {
    let dir = temp("ckpt-read");
    let path = dir.join("checkpoint.json");
    assert!(checkpoint::read(&path).unwrap().is_none(), "no checkpoint: none");
    let good = state(42.0, AlertLevel::Ok);
    checkpoint::save(&path, &good, UNIX_EPOCH + NOW).unwrap();
    assert!(same_state(&checkpoint::read(&path).unwrap().unwrap(), &good));
    let bytes = std::fs::read(&path).unwrap();
    let torn = &bytes[..bytes.len() / 2];
    std::fs::write(&path, torn).unwrap();
    let err = checkpoint::read(&path).unwrap_err();
    let CheckpointError::Invalid { path: reported, reason } = &err else { panic!("{err}") };
    assert_eq!(reported, &path);
    assert!(!reason.is_empty());
    assert!(
        err.to_string().contains("checkpoint.json: not a valid checkpoint")
            && err.to_string().contains("left as it is")
    );
    assert_eq!(std::fs::read(&path).unwrap(), torn, "left in place, byte for byte");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "nothing moved aside, nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

fn entry(i: i64) -> AuditEntry {
    let event = if i % 2 == 0 { AuditEvent::Denied } else { AuditEvent::Override };
    AuditEntry::new(event, 1_795_000_000 + i)
        .budget("research-cluster".into())
        .job(format!("bt-{i}"))
        .tier("heavy".into())
        .actor(if i % 2 == 0 { String::new() } else { "alice, \"ops\"".into() })
        .reason("outside heavy windows 22:00-06:00".into())
}

#[test]
fn an_audit_log_cut_at_any_byte_reads_its_whole_lines_and_takes_new_ones() {
    let dir = temp("audit-cut");
    let path = dir.join("audit.csv");
    let log = AuditLog::new(&path);
    for i in 0..4 {
        log.append(&entry(i)).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let whole = read_audit(&text);
    assert_eq!(whole.entries, (0..4).map(entry).collect::<Vec<_>>());
    assert!(whole.bad_lines.is_empty());
    let line_ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    for len in 0..=text.len() {
        let prefix = &text[..len];
        let complete = line_ends.iter().filter(|&&e| e <= len).count().saturating_sub(1); // minus the header
        let read = read_audit(prefix);
        assert_eq!(read.entries, (0..complete as i64).map(entry).collect::<Vec<_>>(), "cut at {len}");
        let torn = !prefix.is_empty() && !prefix.ends_with('\n');
        assert_eq!(read.bad_lines.len(), usize::from(torn), "cut at {len}: {:?}", read.bad_lines);
        // the next append after a crash starts on its own line
        std::fs::write(&path, prefix).unwrap();
        log.append(&entry(99)).unwrap();
        let after = read_audit(&std::fs::read_to_string(&path).unwrap());
        // a line cut just before its newline lost nothing: the append completes it
        let just_newline = line_ends.contains(&(len + 1));
        let kept = line_ends.iter().filter(|&&e| e <= len + 1).count().saturating_sub(1);
        let mut want: Vec<_> = (0..kept as i64).map(entry).collect();
        want.push(entry(99));
        assert_eq!(after.entries, want, "append after a cut at {len}");
        assert_eq!(after.bad_lines.len(), usize::from(torn && !just_newline), "cut at {len}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoints_round_trip_exactly() {
    let dir = temp("ckpt-round");
    let path = dir.join("c.json");
    let mut c = state(0.1 + 0.2, AlertLevel::Critical);
    c.budgets.insert("x".into(), BudgetState::default());
    checkpoint::save(&path, &c, UNIX_EPOCH + NOW).unwrap();
    let back = load(&path).unwrap().unwrap();
    assert_eq!(back.budgets, c.budgets);
    assert_eq!(back.written_at_unix, NOW.as_secs() as i64);
    let _: BTreeMap<_, _> = back.budgets;
    let _ = std::fs::remove_dir_all(&dir);
}
