//! The accounting behind [`CostAllocator`](super::CostAllocator): job slots, the millisecond tick, and the
//! per-thread accumulators that keep the allocation path free of shared writes. Safe code only.
//!
//! A job that meters memory owns one of [`SLOTS`] slots. Every allocation carries an 8-byte tag (slot and
//! generation) so its bytes go back to the job that made them, whichever thread frees them. A thread's next
//! claim tries the slots its last jobs released first (their lines are in its cache); the generation, 52 bits,
//! tells a slot's owners apart however often it is reused. The live-bytes integral needs no per-block
//! timestamp: with `t` the tick at each event,
//!
//! ```text
//! ∫ live dt = Σ_freed size·t_free + (allocated − freed)·t_end − Σ_allocated size·t_alloc
//!             = weighted + live·t_end,   weighted = Σ_freed size·t_free − Σ_allocated size·t_alloc
//! ```
//!
//! so a job keeps two sums, `live` and `weighted` (and its peak). Each thread adds to its own copy of the
//! running job's sums and folds them into the slot when it leaves the job (the end of a poll), so the allocation
//! path is a thread-local update. Sums are kept modulo 2⁶⁴: the result is exact whenever the true integral fits
//! in 2⁶⁴ byte-ms (about 5,000 GB-hours per job).

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::Duration;

use brownout_foundation::process::monotonic_ns;

use crate::shard::{Sharded, thread_number};

/// How many slots the table has; jobs can meter memory in all but two ("no job" and the installation probe)
/// at once. A job started when every slot is taken falls back to its
/// reservation (its record says so).
pub const SLOTS: usize = 4096;

/// The bits of a tag that hold the slot (the rest hold the generation): [`SLOTS`] is 2^12.
const SLOT_BITS: u32 = 12;
/// The generation's bits in a tag: a slot's generation counts modulo 2^52, so a block freed after its slot has
/// been claimed again is told apart unless exactly 2^51 claims of that slot came between.
const GENERATION_MASK: u64 = (1 << (64 - SLOT_BITS)) - 1;

/// The tick's period: allocation times are counted in whole milliseconds.
pub const TICK: Duration = Duration::from_millis(1);

/// One job's sums. A cache line each: jobs on different threads claim neighbouring slots, and sharing a line
/// would make every update of one job's sums evict the other's from the other core.
#[repr(align(64))]
struct Slot {
    /// Odd while a job owns the slot; bumped at claim and at release (modulo 2^52, [`GENERATION_MASK`]) so late
    /// frees of an earlier owner's blocks are told apart.
    generation: AtomicU64,
    /// The id of the meter whose job owns the slot (for that meter's reconciliation).
    owner: AtomicU64,
    /// Bytes allocated minus bytes freed (modulo 2⁶⁴: a block freed on another thread may be counted before
    /// the allocating thread folds in its allocation).
    live: AtomicU64,
    /// Σ size·t of the frees minus Σ size·t of the allocations (modulo 2⁶⁴).
    weighted: AtomicU64,
    peak: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            generation: AtomicU64::new(0),
            owner: AtomicU64::new(0),
            live: AtomicU64::new(0),
            weighted: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    fn live(&self) -> u64 {
        clamp(self.live.load(Relaxed))
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// The running memory-metered jobs, counted per thread ([`Sharded`]): workers start and end jobs at once.
static ACTIVE: Sharded = Sharded::new();
/// Whether the ticker is parked (or not started): a job that starts then wakes it.
static PARKED: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// Where this thread's next walk of the table starts.
    static CURSOR: Cell<Option<usize>> = const { Cell::new(None) };
    /// The slots this thread's jobs released last, newest last: its next claims try them first.
    static RELEASED: RefCell<Released> = const { RefCell::new(Released { slots: [0; RELEASED_KEPT], len: 0 }) };
}

/// How many released slots a thread keeps for its next claims: more than the jobs a worker usually has running
/// at once, so under a steady stream of requests its claims walk no further than these cache lines.
const RELEASED_KEPT: usize = 32;

/// A thread's most recently released slots (a stack).
struct Released {
    slots: [u16; RELEASED_KEPT],
    len: usize,
}

impl Released {
    /// Keeps `slot` on top, forgetting the oldest when full.
    fn push(&mut self, slot: u16) {
        if self.len == RELEASED_KEPT {
            self.slots.copy_within(1.., 0);
            self.len -= 1;
        }
        self.slots[self.len] = slot;
        self.len += 1;
    }
}

static INSTALLED: OnceLock<bool> = OnceLock::new();
static NOW_MS: AtomicU64 = AtomicU64::new(0);
static SCRIPTED: AtomicBool = AtomicBool::new(false);
static ANCHOR: OnceLock<u64> = OnceLock::new();
static TICKER: OnceLock<std::thread::Thread> = OnceLock::new();

/// A slot and its generation, as stored in an allocation's tag. Slot 0 is "no job".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag {
    slot: u32,
    /// Modulo 2^52 ([`GENERATION_MASK`]).
    generation: u64,
}

impl Tag {
    pub(crate) const NONE: Tag = Tag { slot: 0, generation: 0 };

    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.slot) << (64 - SLOT_BITS)) | self.generation
    }

    pub(crate) fn from_bits(bits: u64) -> Tag {
        Tag { slot: (bits >> (64 - SLOT_BITS)) as u32, generation: bits & GENERATION_MASK }
    }
}

/// The calling thread's share of the job it is running.
struct Local {
    tag: Cell<Tag>,
    /// This thread's change to the job's live bytes since it last folded its sums in (modulo 2⁶⁴).
    live: Cell<u64>,
    /// This thread's change to the job's `weighted` sum since then (modulo 2⁶⁴).
    weighted: Cell<u64>,
    /// The slot's live bytes when this thread entered it; with the local sums, the live bytes it sees.
    base: Cell<u64>,
    peak: Cell<u64>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            tag: Cell::new(Tag::NONE),
            live: Cell::new(0),
            weighted: Cell::new(0),
            base: Cell::new(0),
            peak: Cell::new(0),
        }
    };
}

/// Called by the allocator for every allocation: charges `size` bytes to the thread's job and returns the
/// tag to store with the block.
#[inline]
pub(crate) fn on_alloc(size: u64) -> Tag {
    LOCAL.with(|l| {
        let tag = l.tag.get();
        if tag.slot != 0 {
            let now = NOW_MS.load(Relaxed);
            let delta = l.live.get().wrapping_add(size);
            l.live.set(delta);
            l.weighted.set(l.weighted.get().wrapping_sub(size.wrapping_mul(now)));
            let live = clamp(l.base.get().wrapping_add(delta));
            if live > l.peak.get() {
                l.peak.set(live);
            }
        }
        tag
    })
}

/// Called by the allocator for every free: gives `size` bytes back to the job in `tag`, if it is still running.
#[inline]
pub(crate) fn on_free(size: u64, tag: Tag) {
    if tag.slot == 0 {
        return;
    }
    let now = NOW_MS.load(Relaxed);
    let local = LOCAL.with(|l| {
        if l.tag.get() == tag {
            l.live.set(l.live.get().wrapping_sub(size));
            l.weighted.set(l.weighted.get().wrapping_add(size.wrapping_mul(now)));
            true
        } else {
            false
        }
    });
    if !local {
        // Freed outside the job that made it (another thread, or after the job moved on): straight to the slot.
        let slot = &TABLE[tag.slot as usize];
        if slot.generation.load(Acquire) == tag.generation {
            slot.live.fetch_sub(size, Relaxed);
            slot.weighted.fetch_add(size.wrapping_mul(now), Relaxed);
        }
    }
}

/// A count kept modulo 2⁶⁴ read as bytes: 0 while it is below zero (a free counted before its allocation).
fn clamp(live: u64) -> u64 {
    if (live as i64) < 0 { 0 } else { live }
}

/// Folds the calling thread's sums into its job's slot and zeroes them.
fn flush(l: &Local) {
    let tag = l.tag.get();
    if tag.slot == 0 {
        return;
    }
    let slot = &TABLE[tag.slot as usize];
    if slot.generation.load(Acquire) == tag.generation {
        // Two sums (and the peak, only when this thread saw a higher one): each an atomic add on the slot's
        // line, which the job's own thread usually holds already.
        let live = l.live.replace(0);
        if live != 0 {
            slot.live.fetch_add(live, Relaxed);
        }
        let weighted = l.weighted.replace(0);
        if weighted != 0 {
            slot.weighted.fetch_add(weighted, Relaxed);
        }
        let peak = l.peak.replace(0);
        if peak > slot.peak.load(Relaxed) {
            slot.peak.fetch_max(peak, Relaxed);
        }
    } else {
        // The job has ended: what this thread still held for it is dropped.
        for cell in [&l.live, &l.weighted, &l.peak] {
            cell.set(0);
        }
    }
}

/// Makes `tag` the calling thread's job (flushing the previous one) and returns the previous tag.
pub(crate) fn enter(tag: Tag) -> Tag {
    LOCAL.with(|l| {
        flush(l);
        let base = if tag.slot == 0 { 0 } else { TABLE[tag.slot as usize].live() };
        l.base.set(base);
        l.tag.replace(tag)
    })
}

/// Leaves the current job (flushing it) and makes `previous` current again.
pub(crate) fn leave(previous: Tag) {
    enter(previous);
}

/// The slot used to find out whether the allocator is installed: never claimed by a job.
const PROBE: u32 = (SLOTS - 1) as u32;

/// Whether a [`CostAllocator`](super::CostAllocator) is the process's global allocator. Found out once,
/// by allocating a box while the thread is in the probe slot and seeing whether the allocator counted it
/// (so the allocation path carries no "installed" flag).
pub fn is_installed() -> bool {
    *INSTALLED.get_or_init(|| {
        let previous = enter(Tag { slot: PROBE, generation: 1 });
        let counted = LOCAL.with(|l| {
            let before = l.live.get();
            let probe = std::hint::black_box(Box::new(0u64));
            let counted = l.live.get() != before;
            drop(probe);
            counted
        });
        leave(previous);
        counted
    })
}

/// Where the calling thread's next claim starts: threads start far apart (a prime stride), and each walks
/// the table from where its last claim ended, so their walks rarely meet.
fn cursor() -> usize {
    CURSOR.try_with(Cell::get).ok().flatten().unwrap_or_else(|| thread_number().wrapping_mul(257))
}

/// How many memory-metered jobs are running.
fn active() -> u64 {
    ACTIVE.sum(SeqCst)
}
/// The monotonic clock's reading (nanoseconds) at the tick's zero.
fn anchor() -> u64 {
    *ANCHOR.get_or_init(monotonic_ns)
}

/// The tick of the monotonic clock's reading `now` (nanoseconds): whole milliseconds since the anchor.
fn tick_of(now: u64) -> u64 {
    now.saturating_sub(anchor()) / 1_000_000
}

/// Brings the tick up to date (unless a [`ScriptedClock`] holds it) and returns it.
fn refresh_now() -> u64 {
    refresh_at(monotonic_ns())
}

/// Brings the tick up to `now`, a reading of [`monotonic_ns`] the caller has taken anyway (unless a
/// [`ScriptedClock`] holds it), and returns it.
fn refresh_at(now: u64) -> u64 {
    if SCRIPTED.load(Relaxed) {
        return NOW_MS.load(Relaxed);
    }
    let now = tick_of(now);
    // Jobs end many times a millisecond under load: most find the tick current, and a load leaves the shared
    // line alone where `fetch_max` (a compare-and-swap loop here) would take it from the other cores.
    let current = NOW_MS.load(Relaxed);
    if current >= now {
        return current;
    }
    NOW_MS.fetch_max(now, Relaxed).max(now)
}

/// The longest the ticker sleeps while jobs ending keep the tick current themselves (see [`next_sleep`]).
pub(crate) const MAX_TICKER_SLEEP: Duration = Duration::from_millis(8);

/// How long the ticker sleeps next, after a sleep of `slept`: one [`TICK`] when it had to advance the tick
/// itself (nothing else did within the last tick), else twice as long, up to [`MAX_TICKER_SLEEP`]. Under a
/// stream of requests every job's end brings the tick up to date, so the ticker wakes about 125 times a second
/// instead of 1,000 (each wake a context switch on a busy core); when the jobs stop ending, the tick may lag
/// real time by up to the sleep in progress, once, before the ticker takes over again at one tick.
pub(crate) fn next_sleep(slept: Duration, advanced: bool) -> Duration {
    if advanced { TICK } else { (slept * 2).min(MAX_TICKER_SLEEP) }
}

/// How long the ticker keeps ticking after the last memory-metered job ends before it parks: under a steady
/// stream of short jobs (requests) the count of running jobs touches zero often, and waking a parked thread
/// is a system call.
const LINGER_TICKS: u32 = 100;

/// Starts the ticker thread once, and wakes it. It parks once no job has metered memory for
/// [`LINGER_TICKS`] ticks.
fn wake_ticker() {
    let ticker = TICKER.get_or_init(|| {
        std::thread::Builder::new()
            .name("cost-meter-tick".into())
            .spawn(|| {
                // `idle`: how long the ticker has found no job running at its wakes (a stream of jobs run one
                // at a time on one worker shows none at most wakes, and keeps the tick current all the same).
                let (mut idle, mut sleep) = (Duration::ZERO, TICK);
                PARKED.store(false, SeqCst);
                loop {
                    if active() > 0 {
                        idle = Duration::ZERO;
                        std::thread::sleep(sleep);
                    } else if idle < TICK * LINGER_TICKS {
                        idle += sleep;
                        std::thread::sleep(sleep);
                    } else {
                        (idle, sleep) = (Duration::ZERO, TICK);
                        // Say so first, then look again: a job that starts meanwhile either is seen here or
                        // sees the flag and wakes us (both sides use sequentially consistent operations).
                        PARKED.store(true, SeqCst);
                        if active() == 0 {
                            std::thread::park();
                        }
                        PARKED.store(false, SeqCst);
                    }
                    let before = NOW_MS.load(Relaxed);
                    sleep = next_sleep(sleep, refresh_now() > before);
                }
            })
            .expect("spawning the cost-meter tick thread")
            .thread()
            .clone()
    });
    // Unparking a thread that is not parked is one atomic swap, no system call.
    ticker.unpark();
}

/// Claims a free slot: one this thread released last if one is still free, else the next free one of its
/// walk. The claimed slot and its new generation.
fn pick() -> Option<Tag> {
    let (index, generation) = recently_released().or_else(walk)?;
    Some(Tag { slot: index as u32, generation })
}

/// Frees the slot `tag` holds (its generation moves on) and keeps it for this thread's next claim: its line is
/// in this thread's cache.
fn release(tag: Tag) {
    TABLE[tag.slot as usize].generation.store((tag.generation + 1) & GENERATION_MASK, Release);
    let _ = RELEASED.try_with(|released| {
        if let Ok(mut released) = released.try_borrow_mut() {
            released.push(tag.slot as u16);
        }
    });
}

/// Claims slot `index` if it is free: its new (odd) generation.
fn try_claim(index: usize) -> Option<u64> {
    let slot = &TABLE[index];
    let generation = slot.generation.load(Relaxed);
    if generation % 2 == 1 {
        return None;
    }
    let claimed = (generation + 1) & GENERATION_MASK;
    slot.generation.compare_exchange(generation, claimed, AcqRel, Relaxed).is_ok().then_some(claimed)
}

/// One of the slots this thread released last, newest first, if one is still free (another thread's walk
/// may have taken it meanwhile).
fn recently_released() -> Option<(usize, u64)> {
    RELEASED
        .try_with(|released| {
            let mut released = released.try_borrow_mut().ok()?;
            while released.len > 0 {
                released.len -= 1;
                let index = usize::from(released.slots[released.len]);
                if let Some(claimed) = try_claim(index) {
                    return Some((index, claimed));
                }
            }
            None
        })
        .ok()
        .flatten()
}

/// Walks the table for a free slot: each thread walks the slots 1..PROBE round robin from its own place, so
/// threads rarely try the same one.
fn walk() -> Option<(usize, u64)> {
    let start = cursor();
    (0..SLOTS - 2).find_map(|i| {
        let index = 1 + (start + i) % (SLOTS - 2);
        let claimed = try_claim(index)?;
        let _ = CURSOR.try_with(|c| c.set(Some(start.wrapping_add(i + 1))));
        Some((index, claimed))
    })
}

/// A slot claimed by a running job.
#[derive(Debug)]
pub(crate) struct Claim {
    tag: Tag,
    /// The shard of [`ACTIVE`] the job is counted in.
    shard: usize,
}

/// What a job's slot measured, read when the job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MemoryTotals {
    /// ∫ live bytes dt over the job's life, in byte-milliseconds.
    pub(crate) byte_ms: u64,
    pub(crate) peak_bytes: u64,
}

impl Claim {
    /// Claims a free slot for a job of meter `owner` starting `now` (a reading of [`monotonic_ns`]), or None
    /// when the allocator is not installed or every slot is taken. It counts as running in the calling thread's
    /// shard of [`ACTIVE`] (and stops there, wherever it ends).
    pub(crate) fn new(owner: u64, now: u64) -> Option<Claim> {
        if !is_installed() {
            return None;
        }
        let Tag { slot: index, generation: claimed } = pick()?;
        let slot = &TABLE[index as usize];
        // Ours now. Nothing adds to the sums before the job enters the slot (a thread still holding the previous
        // owner's tag sees another generation), so zeroing them here races with nothing.
        for counter in [&slot.live, &slot.weighted, &slot.peak] {
            counter.store(0, Relaxed);
        }
        slot.owner.store(owner, Relaxed);
        let shard = crate::shard::index();
        ACTIVE.add(shard, 1, SeqCst);
        // The job starts on the current tick (a load when the tick is current), and wakes the ticker, which
        // parks while no job meters memory.
        refresh_at(now);
        if PARKED.load(SeqCst) {
            wake_ticker();
        }
        Some(Claim { tag: Tag { slot: index, generation: claimed }, shard })
    }

    pub(crate) fn tag(&self) -> Tag {
        self.tag
    }

    /// The slot's totals so far, as if the job ended `now` (the calling thread's share included).
    pub(crate) fn totals(&self, now: u64) -> MemoryTotals {
        LOCAL.with(|l| {
            if l.tag.get() == self.tag {
                flush(l);
                l.base.set(TABLE[self.tag.slot as usize].live());
            }
        });
        let slot = &TABLE[self.tag.slot as usize];
        let end = refresh_at(now);
        let live = slot.live.load(Acquire);
        let byte_ms = slot.weighted.load(Acquire).wrapping_add(live.wrapping_mul(end));
        MemoryTotals { byte_ms, peak_bytes: slot.peak.load(Relaxed) }
    }

    /// Ends the job `now`: returns its totals and frees the slot. Blocks freed later are no longer counted.
    pub(crate) fn finish(self, now: u64) -> MemoryTotals {
        let totals = self.totals(now);
        release(self.tag);
        ACTIVE.sub(self.shard, 1, SeqCst);
        totals
    }
}

/// Live heap bytes held now by the running jobs of meter `owner` (what each slot has been told so far).
pub(crate) fn live_bytes_of(owner: u64) -> u64 {
    TABLE
        .iter()
        .filter(|slot| slot.generation.load(Acquire) % 2 == 1 && slot.owner.load(Relaxed) == owner)
        .map(Slot::live)
        .sum()
}

/// Takes the allocator's clock out of real time, for tests that script allocations: while a `ScriptedClock`
/// lives, time moves only when [`advance`](ScriptedClock::advance) says so, and integrals are exact.
///
/// One at a time per process: creating a second while one lives panics. When it is dropped the clock goes back
/// to real time, backwards if `advance` moved it past real time (a job that lived across the scripted time
/// gets a meaningless integral; jobs started afterwards are measured in real time again). Not for production
/// use.
#[derive(Debug)]
pub struct ScriptedClock {
    _private: (),
}

impl ScriptedClock {
    /// Freezes the allocator's clock at its current value.
    pub fn install() -> ScriptedClock {
        refresh_now();
        let was = SCRIPTED.swap(true, SeqCst);
        assert!(!was, "one ScriptedClock at a time");
        ScriptedClock { _private: () }
    }

    /// Moves the allocator's clock forward by `by` (whole milliseconds).
    pub fn advance(&self, by: Duration) {
        NOW_MS.fetch_add(by.as_millis() as u64, SeqCst);
    }
}

impl Drop for ScriptedClock {
    fn drop(&mut self) {
        // Real time again, even if behind the scripted tick: a tick left ahead would stand still (it only
        // moves forward) until real time caught up, and charge the next jobs nothing.
        NOW_MS.store(tick_of(monotonic_ns()), SeqCst);
        SCRIPTED.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The ticker's sleep stays within one tick and the cap, is one tick whenever it had to advance the
        /// tick, and only grows (to the cap) while the jobs keep the tick current.
        #[test]
        fn the_ticker_backs_off_only_while_the_tick_is_kept_current(advanced in proptest::collection::vec(proptest::bool::ANY, 1..64)) {
            let mut sleep = TICK;
            for advanced in advanced {
                let next = next_sleep(sleep, advanced);
                proptest::prop_assert!((TICK..=MAX_TICKER_SLEEP).contains(&next));
                if advanced {
                    proptest::prop_assert_eq!(next, TICK);
                } else {
                    proptest::prop_assert!(next >= sleep);
                    proptest::prop_assert!(next == MAX_TICKER_SLEEP || next == sleep * 2);
                }
                sleep = next;
            }
        }
    }

    #[test]
    fn the_ticker_reaches_its_cap_in_three_quiet_wakes() {
        let sleeps: Vec<_> = std::iter::successors(Some(TICK), |s| Some(next_sleep(*s, false))).take(5).collect();
        assert_eq!(sleeps, [1, 2, 4, 8, 8].map(Duration::from_millis));
    }

    #[test]
    fn tags_round_trip() {
        let tag = Tag { slot: 4095, generation: GENERATION_MASK };
        assert_eq!(Tag::from_bits(tag.to_bits()), tag);
        assert_eq!(Tag::from_bits(0), Tag::NONE);
    }

    /// A thread's next claim takes the slot it released last, with a new generation; a slot another thread took
    /// meanwhile is passed over. (Nothing else claims slots in this test binary: the allocator is not
    /// installed, so jobs here meter no memory.)
    #[test]
    fn a_threads_next_claim_reuses_the_slot_it_released_last() {
        let first = pick().expect("a free slot");
        release(first);
        let second = pick().expect("a free slot");
        assert_eq!(second.slot, first.slot, "the slot released last is tried first");
        assert_eq!(second.generation, (first.generation + 2) & GENERATION_MASK, "with a new generation");
        release(second);
        let taken = try_claim(second.slot as usize).expect("free again");
        let third = pick().expect("a free slot");
        assert_ne!(third.slot, second.slot, "taken by someone else: passed over");
        release(third);
        release(Tag { slot: second.slot, generation: taken });
    }

    /// A slot's generation wraps at 2^52 and keeps its parity (odd while claimed), and the wrapped tag reads back.
    #[test]
    fn a_slots_generation_wraps_with_its_parity() {
        let claimed = pick().expect("a free slot");
        release(claimed);
        let index = claimed.slot as usize;
        // Take the slot back out of this thread's list first, then set it just below the wrap.
        let again = pick().expect("a free slot");
        assert_eq!(again.slot, claimed.slot);
        TABLE[index].generation.store(GENERATION_MASK, Relaxed);
        let late = Tag { slot: again.slot, generation: GENERATION_MASK };
        release(late);
        assert_eq!(TABLE[index].generation.load(Relaxed), 0, "free, wrapped");
        let next = pick().expect("a free slot");
        assert_eq!(next, Tag { slot: again.slot, generation: 1 });
        assert_eq!(Tag::from_bits(late.to_bits()), late);
        release(next);
    }
}
