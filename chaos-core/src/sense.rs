//! A cheap reader of the process's own resource use: CPU (in cores), RSS against the memory limit, and IO
//! rates, for degrade triggers and GameDay reports.
//!
//! [`Probe::sample`] reads the kernel once (the process CPU clock, `/proc/self/statm`, `/proc/self/io`, the
//! memory limit) and turns the difference from the previous reading into rates. A [`Sensor`] runs a probe
//! on a background thread every interval and publishes the latest [`Sample`] through an `ArcSwap`, so
//! readers ([`SenseHandle::latest`]) take no lock. Dropping the sensor stops and joins its thread within
//! 100 ms.
//!
//! ```
//! use std::time::Duration;
//! use brownout_chaos::sense::Sensor;
//!
//! let sensor = Sensor::start(Duration::from_millis(50))?;
//! let sample = sensor.latest();
//! assert!(sample.rss_bytes > 0);
//! drop(sensor);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use brownout_foundation::process::{process_cpu, rss_bytes};

use crate::pressure::memory_limit;

/// The shortest interval a [`Sensor`] samples at.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// One reading of the process's resource use.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Sample {
    /// When it was taken.
    pub taken: Instant,
    /// Time since the previous sample, over which the rates are computed (zero for a first sample).
    pub interval: Duration,
    /// CPU used over the interval, in cores (1.0 = one core busy all the time).
    pub cpu_cores: f64,
    /// CPU time used by the process since it started (user and system, all threads).
    pub cpu_time: Duration,
    /// Resident memory, from `/proc/self/statm` (0 when unreadable).
    pub rss_bytes: u64,
    /// The memory limit (cgroup v2 `memory.max`, else physical memory; 0 when unreadable).
    pub memory_limit_bytes: u64,
    /// `rss_bytes / memory_limit_bytes` (0 when the limit is unknown).
    pub memory_fraction: f64,
    /// Bytes the process caused to be read from storage, since it started (`/proc/self/io`, when readable).
    pub read_bytes: Option<u64>,
    /// Bytes the process caused to be written to storage, since it started.
    pub write_bytes: Option<u64>,
    /// Storage read rate over the interval.
    pub read_bytes_per_sec: Option<f64>,
    /// Storage write rate over the interval.
    pub write_bytes_per_sec: Option<f64>,
}

impl Sample {
    /// A reading taken at `taken`, `interval` after the previous one, with nothing measured: for tests and for
    /// signals fed from another source. [`cpu`](Self::cpu) and [`memory`](Self::memory) set the figures.
    pub fn new(taken: Instant, interval: Duration) -> Self {
        Self {
            taken,
            interval,
            cpu_cores: 0.0,
            cpu_time: Duration::ZERO,
            rss_bytes: 0,
            memory_limit_bytes: 0,
            memory_fraction: 0.0,
            read_bytes: None,
            write_bytes: None,
            read_bytes_per_sec: None,
            write_bytes_per_sec: None,
        }
    }

    /// Sets the CPU used over the interval (in cores) and since the process started.
    #[must_use]
    pub fn cpu(mut self, cores: f64, since_start: Duration) -> Self {
        self.cpu_cores = cores;
        self.cpu_time = since_start;
        self
    }

    /// Sets the resident memory and the limit, and the fraction that follows (0 when the limit is 0).
    #[must_use]
    pub fn memory(mut self, rss_bytes: u64, limit_bytes: u64) -> Self {
        self.rss_bytes = rss_bytes;
        self.memory_limit_bytes = limit_bytes;
        self.memory_fraction = if limit_bytes == 0 { 0.0 } else { rss_bytes as f64 / limit_bytes as f64 };
        self
    }
}

/// Reads the kernel and keeps the previous reading, to turn totals into rates.
#[derive(Debug, Default)]
pub struct Probe {
    last: Option<Reading>,
}

/// When, the process CPU clock, and `(read_bytes, write_bytes)`.
type Reading = (Instant, Duration, Option<(u64, u64)>);

impl Probe {
    /// A probe with no previous reading.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads now. The first sample has zero rates; later ones have rates over the time since the previous.
    pub fn sample(&mut self) -> Sample {
        let taken = Instant::now();
        let cpu_time = process_cpu();
        let io = std::fs::read_to_string("/proc/self/io").ok().and_then(|t| parse_io(&t));
        let rss_bytes = rss_bytes().unwrap_or(0);
        let memory_limit_bytes = memory_limit().map(|l| l.bytes).unwrap_or(0);
        let (interval, cpu_cores, rates) = match self.last {
            Some((at, cpu, last_io)) => {
                let interval = taken.saturating_duration_since(at);
                let secs = interval.as_secs_f64();
                let cores = if secs > 0.0 { cpu_time.saturating_sub(cpu).as_secs_f64() / secs } else { 0.0 };
                let rates = match (io, last_io) {
                    (Some((r, w)), Some((lr, lw))) if secs > 0.0 => {
                        Some((r.saturating_sub(lr) as f64 / secs, w.saturating_sub(lw) as f64 / secs))
                    }
                    (Some(_), _) => Some((0.0, 0.0)),
                    _ => None,
                };
                (interval, cores, rates)
            }
            None => (Duration::ZERO, 0.0, io.map(|_| (0.0, 0.0))),
        };
        self.last = Some((taken, cpu_time, io));
        Sample {
            taken,
            interval,
            cpu_cores,
            cpu_time,
            rss_bytes,
            memory_limit_bytes,
            memory_fraction: if memory_limit_bytes > 0 { rss_bytes as f64 / memory_limit_bytes as f64 } else { 0.0 },
            read_bytes: io.map(|(r, _)| r),
            write_bytes: io.map(|(_, w)| w),
            read_bytes_per_sec: rates.map(|(r, _)| r),
            write_bytes_per_sec: rates.map(|(_, w)| w),
        }
    }
}

/// `(read_bytes, write_bytes)` from `/proc/self/io`.
pub(crate) fn parse_io(io: &str) -> Option<(u64, u64)> {
    let field = |name: &str| io.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok());
    Some((field("read_bytes:")?, field("write_bytes:")?))
}

/// A cheap, cloneable reader of a [`Sensor`]'s latest sample.
#[derive(Debug, Clone)]
pub struct SenseHandle {
    latest: Arc<ArcSwap<Sample>>,
}

impl SenseHandle {
    /// The latest sample: a lock-free load.
    pub fn latest(&self) -> Arc<Sample> {
        self.latest.load_full()
    }
}

type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// Samples the process on a background thread every interval. Dropping it stops and joins the thread.
#[derive(Debug)]
pub struct Sensor {
    handle: SenseHandle,
    stop: StopSignal,
    thread: Option<JoinHandle<()>>,
}

impl Sensor {
    /// Takes a first sample now, then one every `interval` (at least [`MIN_INTERVAL`]) on a thread named
    /// `brownout-sense`. Fails only if the thread cannot be spawned.
    pub fn start(interval: Duration) -> std::io::Result<Self> {
        let interval = interval.max(MIN_INTERVAL);
        let mut probe = Probe::new();
        let handle = SenseHandle { latest: Arc::new(ArcSwap::from_pointee(probe.sample())) };
        let stop: StopSignal = Arc::new((Mutex::new(false), Condvar::new()));
        let (publish, signal) = (handle.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("brownout-sense".into()).spawn(move || {
            let (lock, wake) = &*signal;
            let mut stopped = brownout_foundation::sync::lock(lock);
            let later = |from: Instant| crate::pressure::deadline(from, interval);
            let mut next = later(Instant::now());
            loop {
                while !*stopped {
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    stopped = wake.wait_timeout(stopped, next - now).unwrap_or_else(PoisonError::into_inner).0;
                }
                if *stopped {
                    return;
                }
                publish.latest.store(Arc::new(probe.sample()));
                next = later(next);
                let now = Instant::now();
                if next < now {
                    next = later(now);
                }
            }
        })?;
        Ok(Self { handle, stop, thread: Some(thread) })
    }

    /// The latest sample: a lock-free load.
    pub fn latest(&self) -> Arc<Sample> {
        self.handle.latest()
    }

    /// A cloneable reader; after the sensor stops it keeps returning the last sample.
    pub fn handle(&self) -> SenseHandle {
        self.handle.clone()
    }

    /// Stops and joins the sampling thread.
    pub fn stop(self) {}
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *brownout_foundation::sync::lock(lock) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let io =
            "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), Some((4096, 8192)));
        assert_eq!(parse_io("rchar: 1\n"), None);
    }

    #[test]
    fn a_probe_measures_its_own_burn() {
        let mut probe = Probe::new();
        let first = probe.sample();
        assert_eq!(first.interval, Duration::ZERO);
        assert!(first.rss_bytes > 0 && first.memory_limit_bytes > 0);
        crate::pressure::burn_cpu(Duration::from_millis(30));
        let second = probe.sample();
        assert!(second.interval > Duration::ZERO);
        assert!(second.cpu_time >= first.cpu_time + Duration::from_millis(30));
        assert!(second.cpu_cores > 0.0);
    }

    #[test]
    fn a_sensor_publishes_and_stops_fast() {
        let sensor = Sensor::start(Duration::from_millis(10)).expect("thread");
        let handle = sensor.handle();
        let first = handle.latest().taken;
        std::thread::sleep(Duration::from_millis(60));
        assert!(handle.latest().taken > first);
        let began = Instant::now();
        sensor.stop();
        assert!(began.elapsed() < Duration::from_millis(100));
        let last = handle.latest().taken;
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(handle.latest().taken, last);
    }
}
