//! Metering a command run as a child process, with its whole process tree (`cost-meter run`).
//!
//! - **CPU** comes from the kernel: `wait4` returns the child's rusage (user + system time), which includes
//!   every descendant that the child or its descendants waited for ([`CpuMode::ChildRusage`]). With
//!   [`Spawn::reap_orphans`] (what `cost-meter run` does) this process becomes the *subreaper* of the tree:
//!   a descendant orphaned by its parent (a daemonised helper, `cmd &` in a script that exits) is re-parented
//!   to it, reaped and counted too. A descendant still running when the child exits is not waited for: it is
//!   counted in [`ChildOutcome::orphans_running`] and its cost is not metered.
//! - **Memory** is the tree's resident set size (the child and every descendant found by parent id under
//!   `/proc`), sampled every `sample_every` by a thread and integrated over time: each sample's bytes count
//!   until the next sample ([`MemoryMode::TreeRss`]). The error: a change of RSS is seen at most one interval
//!   late, so a job that holds `B` bytes for `T` seconds is charged `B × T` within `B × interval` for the
//!   rise and as much for the fall (a relative error of at most `2 × interval / T`, e.g. 2% for a 10 s hold
//!   sampled every 100 ms); a process that lives less than one interval may be missed; pages shared between
//!   processes of the tree (after `fork`) count once per process. A walk of `/proc` costs about 0.8 ms with
//!   95 processes (measured here, debug build: 1 100 samples in 2 s at `--sample-interval 1ms`), so the
//!   default interval of 250 ms costs under 0.5% of a core.
//!
//! ```no_run
//! use std::process::Command;
//! use brownout_cost::child::{MeteredChild, Spawn};
//! use brownout_cost::Labels;
//!
//! let child = MeteredChild::spawn(Command::new("python3").arg("backtest.py"), Spawn::default())?;
//! let outcome = child.wait()?;
//! let record = outcome.record("bt-42", Labels::new("research", "backtester"));
//! println!("{} CPU-seconds, exit {}", record.cpu_seconds, outcome.exit_code());
//! # Ok::<(), std::io::Error>(())
//! ```

mod sys;
mod tree;
#[cfg(feature = "budgets")]
mod workers;

use std::io;
use std::process::Command;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use sys::Ended;
pub use tree::{descendants_rss_bytes, parse_stat_ppid, tree_pids, tree_rss_bytes};
#[cfg(feature = "budgets")]
pub use workers::{WORKER_VARS, Workers};

use crate::record::{CpuMode, JobRecord, MemoryMode, gb_hours};
use crate::{JobId, Labels};

/// The default interval between two samples of the tree's resident memory.
pub const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// How to spawn a [`MeteredChild`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Spawn {
    /// The interval between two samples of the tree's resident memory.
    pub sample_every: Duration,
    /// The child leads a new process group ([`MeteredChild::signal`] then reaches its whole tree, and a
    /// terminal's Ctrl-C does not reach it directly).
    pub own_group: bool,
    /// Become the subreaper of the child's tree and meter orphaned descendants too. This process then reaps
    /// **every** child of its own that ends while the metered one runs (`wait4(-1)`): use it only in a process
    /// whose only child is the metered one, as `cost-meter run`.
    pub reap_orphans: bool,
}

impl Default for Spawn {
    /// Sampling every [`DEFAULT_SAMPLE_EVERY`], the child in this process's group, orphans not reaped.
    fn default() -> Self {
        Spawn { sample_every: DEFAULT_SAMPLE_EVERY, own_group: false, reap_orphans: false }
    }
}

brownout_foundation::setters! {
    impl Spawn {
        sample_every: Duration,
        own_group: bool,
        reap_orphans: bool,
    }
}

/// A command running as a metered child process.
#[derive(Debug)]
pub struct MeteredChild {
    pid: i32,
    group: bool,
    reap_orphans: bool,
    started: SystemTime,
    start: Instant,
    stop: mpsc::Sender<()>,
    sampler: JoinHandle<Memory>,
}

/// The tree's memory as sampled.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    byte_seconds: f64,
    peak_bytes: u64,
    samples: u64,
}

/// Whose memory the sampler reads.
#[derive(Debug, Clone, Copy)]
enum Tree {
    /// The child's tree.
    Of(i32),
    /// Every descendant of this process (the child's tree and its orphans, re-parented here).
    Ours,
}

impl Tree {
    fn rss(self) -> u64 {
        match self {
            Tree::Of(pid) => tree_rss_bytes(pid),
            Tree::Ours => descendants_rss_bytes(std::process::id() as i32),
        }
    }
}

fn sample(tree: Tree, every: Duration, stop: mpsc::Receiver<()>) -> Memory {
    let mut m = Memory::default();
    let mut last = Instant::now();
    let mut bytes = tree.rss();
    loop {
        m.samples += 1;
        m.peak_bytes = m.peak_bytes.max(bytes);
        let done = match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        let now = Instant::now();
        m.byte_seconds += bytes as f64 * now.duration_since(last).as_secs_f64();
        last = now;
        if done {
            return m;
        }
        bytes = tree.rss();
    }
}

impl MeteredChild {
    /// Spawns `command` as `how` says and starts sampling its tree's memory.
    pub fn spawn(command: &mut Command, how: Spawn) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let Spawn { sample_every, own_group, reap_orphans } = how;
        if own_group {
            command.process_group(0);
        }
        if reap_orphans {
            sys::become_subreaper()?;
        }
        let started = SystemTime::now();
        let start = Instant::now();
        let child = command.spawn()?;
        // The child is reaped by `wait4` below, never by std (dropping a `Child` does not wait).
        let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("child pid out of range"))?;
        let (stop, rx) = mpsc::channel();
        let every = sample_every.max(Duration::from_millis(1));
        let tree = if reap_orphans { Tree::Ours } else { Tree::Of(pid) };
        let sampler =
            std::thread::Builder::new().name("cost-meter-rss".into()).spawn(move || sample(tree, every, rx))?;
        Ok(MeteredChild { pid, group: own_group, reap_orphans, started, start, stop, sampler })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Sends `signal` to the child (to its process group if it leads one). Call it only before
    /// [`wait`](Self::wait) returns (the id could be reused after).
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        sys::kill(self.pid, signal, self.group)
    }

    /// A cheap handle that can signal the child from another thread (a signal forwarder).
    pub fn signaller(&self) -> Signaller {
        Signaller { pid: self.pid, group: self.group }
    }

    /// Waits for the child to end, stops sampling, and returns what it cost.
    pub fn wait(self) -> io::Result<ChildOutcome> {
        let reaped = if self.reap_orphans { self.reap_tree() } else { sys::wait4(self.pid).map(|r| (r, 0)) };
        let wall = self.start.elapsed();
        let _ = self.stop.send(());
        let memory = self.sampler.join().unwrap_or_default();
        let (reaped, orphans_running) = reaped?;
        Ok(ChildOutcome {
            ended: reaped.ended,
            started: self.started,
            wall,
            user: reaped.user,
            system: reaped.system,
            memory_byte_seconds: memory.byte_seconds,
            peak_rss_bytes: memory.peak_bytes.max(reaped.max_rss_bytes),
            samples: memory.samples,
            orphans_running,
        })
    }

    /// Reaps every child until the metered one ends (orphans re-parented here included), then the orphans
    /// that have ended since: the sum of their rusage, the metered child's end, and how many still run.
    fn reap_tree(&self) -> io::Result<(sys::Reaped, usize)> {
        let mut total: Option<sys::Reaped> = None;
        let mut main = None;
        let mut add = |r: sys::Reaped| {
            let t = total.get_or_insert(sys::Reaped {
                max_rss_bytes: 0,
                user: Duration::ZERO,
                system: Duration::ZERO,
                ended: r.ended,
            });
            t.user += r.user;
            t.system += r.system;
            t.max_rss_bytes = t.max_rss_bytes.max(r.max_rss_bytes);
        };
        while main.is_none() {
            match sys::wait_any(false)? {
                Some((pid, r)) => {
                    if pid == self.pid {
                        main = Some(r.ended);
                    }
                    add(r);
                }
                None => return Err(io::Error::other("the metered child vanished (reaped elsewhere)")),
            }
        }
        while let Some((_, r)) = sys::wait_any(true)? {
            add(r);
        }
        let mut total = total.expect("the metered child was reaped");
        total.ended = main.expect("the loop ends on it");
        let running = tree_pids(std::process::id() as i32).len().saturating_sub(1);
        Ok((total, running))
    }
}

/// Signals a [`MeteredChild`] from another thread.
#[derive(Debug, Clone, Copy)]
pub struct Signaller {
    pid: i32,
    group: bool,
}

impl Signaller {
    /// Sends `signal` to the child (its process group if it leads one).
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        sys::kill(self.pid, signal, self.group)
    }
}

/// What a metered child cost, and how it ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChildOutcome {
    /// How it ended.
    pub ended: Ended,
    /// When it started (calendar time).
    pub started: SystemTime,
    /// Wall time from spawn to reaping.
    pub wall: Duration,
    /// User CPU time of the child and its reaped descendants (the kernel's rusage).
    pub user: Duration,
    /// System CPU time of the child and its reaped descendants.
    pub system: Duration,
    /// The tree's resident memory integrated over time, in byte-seconds.
    pub memory_byte_seconds: f64,
    /// The highest tree RSS sampled, or the kernel's `ru_maxrss` of one process if higher, in bytes.
    pub peak_rss_bytes: u64,
    /// How many memory samples were taken.
    pub samples: u64,
    /// Descendants still running when the child ended (with [`Spawn::reap_orphans`]): not metered.
    pub orphans_running: usize,
}

impl ChildOutcome {
    /// The outcome of nothing run at `started` (a cache hit): no time, no CPU, no memory, exit 0.
    pub fn nothing(started: SystemTime) -> Self {
        ChildOutcome {
            ended: Ended::Exited(0),
            started,
            wall: Duration::ZERO,
            user: Duration::ZERO,
            system: Duration::ZERO,
            memory_byte_seconds: 0.0,
            peak_rss_bytes: 0,
            samples: 0,
            orphans_running: 0,
        }
    }

    /// User + system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }

    /// The exit status to pass on: the child's own, or 128 + the signal that killed it (as shells do).
    pub fn exit_code(&self) -> u8 {
        match self.ended {
            Ended::Exited(code) => (code & 0xff) as u8,
            Ended::Signaled(sig) => (128 + sig).clamp(0, 255) as u8,
        }
    }

    /// The job's record, with `job_id` and `labels`.
    pub fn record(&self, job_id: impl Into<JobId>, labels: Labels) -> JobRecord {
        let started_at_unix = brownout_foundation::time::unix_seconds(self.started);
        JobRecord {
            job_id: job_id.into(),
            labels,
            started_at_unix,
            wall_seconds: self.wall.as_secs_f64(),
            cpu_seconds: self.cpu().as_secs_f64(),
            cpu_mode: CpuMode::ChildRusage,
            memory_byte_seconds: self.memory_byte_seconds,
            memory_gb_hours: gb_hours(self.memory_byte_seconds),
            peak_bytes: self.peak_rss_bytes,
            reserved_bytes: 0,
            memory_mode: MemoryMode::TreeRss,
            cache_hit: false,
        }
    }
}
