//! Helpers shared by chaos-tower's test files.

use std::io;
use std::sync::{Arc, Mutex};

/// Log output captured from a `tracing` subscriber (`with_writer(move || logs.clone())`).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Everything written so far, a line each.
    #[allow(dead_code)]
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

/// A current-thread runtime on paused time.
#[allow(dead_code)]
pub fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

/// A signal a test turns by hand ([`set`]); NaN (no reading) until then.
#[allow(dead_code)]
pub fn dial() -> (std::sync::Arc<std::sync::atomic::AtomicU64>, impl brownout_tower::degrade::Signal) {
    let value = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(f64::NAN.to_bits()));
    let read = value.clone();
    (value, move || Some(f64::from_bits(read.load(std::sync::atomic::Ordering::Relaxed))))
}

/// Sets a [`dial`].
#[allow(dead_code)]
pub fn set(dial: &std::sync::atomic::AtomicU64, v: f64) {
    dial.store(v.to_bits(), std::sync::atomic::Ordering::Relaxed);
}
