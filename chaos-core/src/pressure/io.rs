//! The disk writer: writes and fsyncs a file in a fresh temporary directory at a target rate.
//!
//! The file is rewritten from its start once it reaches [`FILE_CAP`], so the disk used stays bounded; the
//! directory is removed when the pressure ends, however it ends.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::state::Shared;
use super::{SLICE, StopReason};

/// Largest file the writer keeps; it wraps around at this size.
pub(crate) const FILE_CAP: u64 = 64 << 20;
/// Largest single write (and fsync) between stop checks.
pub(crate) const WRITE_MAX: u64 = 1 << 20;
/// Owed bytes older than this are forgiven when the disk is slower than the target.
pub(crate) const MAX_BACKLOG: Duration = Duration::from_millis(100);

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under [`std::env::temp_dir`], removed on drop.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub(crate) fn create() -> io::Result<Self> {
        let base = std::env::temp_dir();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let mut last = None;
        for _ in 0..16 {
            let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("brownout-io-{}-{n}-{nanos:08x}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Self { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no unique directory name")))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove the IO pressure's directory");
        }
    }
}

/// Bytes due after `elapsed` at `bytes_per_sec` (saturating).
pub(crate) fn due(bytes_per_sec: u64, elapsed: Duration) -> u64 {
    (bytes_per_sec as f64 * elapsed.as_secs_f64()) as u64
}

/// The smallest write: one slice's worth of the rate (so about one write and fsync per [`SLICE`]).
fn write_min(bytes_per_sec: u64) -> u64 {
    due(bytes_per_sec, SLICE).clamp(1, WRITE_MAX)
}

/// The next write given what is due and what was written: `Ok(bytes)`, or `Err(wait)` until enough is due.
pub(crate) fn next_write(bytes_per_sec: u64, due: u64, written: u64) -> Result<u64, Duration> {
    let owed = due.saturating_sub(written);
    let min = write_min(bytes_per_sec);
    if owed >= min {
        Ok(owed.min(WRITE_MAX))
    } else {
        let secs = (min - owed) as f64 / bytes_per_sec.max(1) as f64;
        let wait = Duration::try_from_secs_f64(secs).unwrap_or(SLICE);
        Err(wait.clamp(Duration::from_millis(1), SLICE))
    }
}

fn write_some(file: &mut File, buf: &[u8], pos: &mut u64) -> io::Result<()> {
    if *pos + buf.len() as u64 > FILE_CAP {
        file.seek(SeekFrom::Start(0))?;
        *pos = 0;
    }
    file.write_all(buf)?;
    file.sync_data()?;
    *pos += buf.len() as u64;
    Ok(())
}

/// Writes at `bytes_per_sec` until `end` or a stop, then removes the directory.
pub(crate) fn run(shared: &Shared, scratch: Scratch, bytes_per_sec: u64, end: Instant) {
    let path = scratch.path().join("pressure.dat");
    let mut file = match File::create(&path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(pressure = %shared.name, error = %e, "cannot create the IO pressure's file");
            shared.stop(StopReason::Failed);
            return;
        }
    };
    let buf = vec![0x5A_u8; WRITE_MAX as usize];
    let began = Instant::now();
    let (mut written, mut forgiven, mut pos) = (0u64, 0u64, 0u64);
    loop {
        let now = Instant::now();
        if shared.is_stopping() || now >= end {
            break;
        }
        let owed_total = due(bytes_per_sec, now - began).saturating_sub(forgiven);
        let backlog = due(bytes_per_sec, MAX_BACKLOG);
        if owed_total.saturating_sub(written) > backlog {
            forgiven += owed_total - written - backlog;
            continue;
        }
        let n = match next_write(bytes_per_sec, owed_total, written) {
            Ok(n) => n,
            Err(wait) => {
                if shared.wait_until(super::deadline(now, wait).min(end)) {
                    break;
                }
                continue;
            }
        };
        if let Err(e) = write_some(&mut file, &buf[..n as usize], &mut pos) {
            tracing::warn!(pressure = %shared.name, error = %e, "the IO pressure cannot write");
            shared.stop(StopReason::Failed);
            break;
        }
        written += n;
        shared.work.store(written, Ordering::Relaxed);
    }
    drop(file);
    drop(scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scratch_directories_are_unique_and_removed() {
        let a = Scratch::create().expect("temp dir");
        let b = Scratch::create().expect("temp dir");
        assert_ne!(a.path(), b.path());
        let path = a.path().to_path_buf();
        std::fs::write(path.join("x"), b"x").expect("write");
        drop(a);
        assert!(!path.exists());
    }

    proptest! {
        #[test]
        fn writes_never_exceed_what_is_due(bps in 1u64..=super::super::MAX_IO_BYTES_PER_SEC, ms in 0u64..100_000, written_frac in 0.0f64..=1.0) {
            let due = due(bps, Duration::from_millis(ms));
            let written = (due as f64 * written_frac) as u64;
            match next_write(bps, due, written) {
                Ok(n) => {
                    prop_assert!(written + n <= due);
                    prop_assert!((1..=WRITE_MAX).contains(&n));
                }
                Err(wait) => prop_assert!(wait >= Duration::from_millis(1) && wait <= SLICE),
            }
        }

        #[test]
        fn due_is_exact_to_a_byte(bps in 1u64..=super::super::MAX_IO_BYTES_PER_SEC, ms in 0u64..100_000) {
            let exact = bps as f64 * ms as f64 / 1000.0;
            prop_assert!((due(bps, Duration::from_millis(ms)) as f64 - exact).abs() <= 1.0 + exact * 1e-12);
        }
    }
}
