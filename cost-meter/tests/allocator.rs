//! The allocator's attribution, with the cost-meter allocator installed for this test binary: scripted
//! allocations give the exact byte-seconds integral; frees on another thread go back to the job that
//! allocated; nothing is charged after a job ends.

use std::alloc::{Layout, alloc, dealloc, realloc};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use brownout_cost::alloc::ScriptedClock;
use brownout_cost::{CostAllocator, JobSpec, Labels, MemoryMode, Meter};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: CostAllocator = CostAllocator::system();

/// The scripted clock is process-wide: tests that use it take turns.
static CLOCK: Mutex<()> = Mutex::new(());

fn spec(id: &str) -> JobSpec {
    JobSpec::new(id, Labels::new("research", "alloc-test"))
}

/// A raw block, moved between threads as an address.
#[derive(Clone, Copy)]
struct Block {
    addr: usize,
    layout: Layout,
}

fn raw_alloc(size: usize, align: usize) -> Block {
    let layout = Layout::from_size_align(size, align).unwrap();
    // SAFETY: non-zero size.
    let ptr = unsafe { alloc(layout) };
    assert!(!ptr.is_null());
    assert_eq!(ptr as usize % align, 0, "the allocator keeps the alignment asked for");
    // Touch every byte: the header must not overlap the block.
    // SAFETY: the block is `size` bytes long.
    unsafe { ptr.write_bytes(0xA5, size) };
    Block { addr: ptr as usize, layout }
}

fn raw_free(block: Block) {
    // SAFETY: allocated by `raw_alloc` with this layout, freed once.
    unsafe { dealloc(block.addr as *mut u8, block.layout) }
}

#[test]
fn the_allocator_is_installed_and_jobs_meter_memory() {
    let meter = Meter::new();
    let job = meter.start(spec("installed"));
    assert!(brownout_cost::alloc::is_installed());
    assert!(job.meters_memory());
    assert_eq!(job.finish().memory_mode, MemoryMode::Allocator);
}

#[test]
fn on_the_real_clock_a_held_block_is_charged_its_size_times_the_time_held() {
    let _turn = CLOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let meter = Meter::new();
    let job = meter.start(spec("held"));
    let started = Instant::now();
    let block = job.run(|| raw_alloc(1 << 20, 8));
    std::thread::sleep(Duration::from_millis(20));
    job.run(|| raw_free(block));
    let held = started.elapsed().as_secs_f64();
    let record = job.finish();
    // Allocation times are whole milliseconds of the tick, which may lag real time by up to the ticker's
    // longest sleep (8 ms) when other jobs stop ending: 10 ms of slack each way.
    let (charged, mib) = (record.memory_byte_seconds, f64::from(1 << 20));
    assert!(charged >= mib * 0.010, "1 MiB held 20 ms charged {charged} byte-seconds");
    assert!(charged <= mib * (held + 0.010), "1 MiB held {held} s charged {charged} byte-seconds");
}

#[test]
fn scripted_allocations_give_the_exact_integral_with_a_free_on_another_thread() {
    let _turn = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let clock = ScriptedClock::install();
    let meter = Meter::new();
    let job = meter.start(spec("scripted"));

    let a = job.run(|| raw_alloc(1000, 8)); // t = 0: 1000 live
    clock.advance(Duration::from_secs(2));
    let b = job.run(|| raw_alloc(500, 64)); // t = 2: 1500 live (an over-aligned block)
    clock.advance(Duration::from_secs(1));
    // t = 3: another thread, outside any job, frees the job's first block: it still counts for the job.
    std::thread::spawn(move || raw_free(a)).join().unwrap();
    clock.advance(Duration::from_secs(1));
    let record = job.finish(); // t = 4: 500 live

    // ∫ live dt = 1000 B × 3 s + 500 B × 2 s
    assert_eq!(record.memory_byte_seconds, 4000.0);
    assert_eq!(record.peak_bytes, 1500);
    assert_eq!(record.memory_mode, MemoryMode::Allocator);

    // After the job ended, its blocks no longer count anywhere (and freeing them is safe).
    raw_free(b);
    drop(clock);
}

/// A thread's next job reuses the memory slot its last job released: blocks the earlier job left behind, freed
/// while the next one runs (on its thread or on another), are not the next job's.
#[test]
fn blocks_left_by_a_finished_job_are_not_charged_to_the_next_job_on_its_slot() {
    let _turn = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let clock = ScriptedClock::install();
    let meter = Meter::new();
    let first = meter.start(spec("first"));
    let (left, other) = first.run(|| (raw_alloc(1000, 8), raw_alloc(300, 8)));
    first.finish();

    let next = meter.start(spec("next"));
    let held = next.run(|| {
        raw_free(left);
        raw_alloc(200, 8)
    });
    std::thread::spawn(move || raw_free(other)).join().unwrap();
    clock.advance(Duration::from_secs(1));
    let record = next.finish();
    assert_eq!(record.memory_byte_seconds, 200.0, "only its own 200 B, held for 1 s");
    assert_eq!(record.peak_bytes, 200);
    raw_free(held);
    drop(clock);
}

#[test]
fn realloc_moves_the_bytes_to_the_job_that_grows_the_block() {
    let _turn = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let clock = ScriptedClock::install();
    let meter = Meter::new();
    let owner = meter.start(spec("owner"));
    let grower = meter.start(spec("grower"));

    let block = owner.run(|| raw_alloc(100, 8));
    clock.advance(Duration::from_secs(1));
    let grown = grower.run(|| {
        // SAFETY: a live block with its layout; the new size is non-zero.
        let ptr = unsafe { realloc(block.addr as *mut u8, block.layout, 300) };
        assert!(!ptr.is_null());
        // SAFETY: the first 100 bytes were copied over.
        assert_eq!(unsafe { *ptr.add(99) }, 0xA5);
        Block { addr: ptr as usize, layout: Layout::from_size_align(300, 8).unwrap() }
    });
    clock.advance(Duration::from_secs(1));
    raw_free(grown);

    let (owner, grower) = (owner.finish(), grower.finish());
    assert_eq!(owner.memory_byte_seconds, 100.0, "100 B held for 1 s, then handed over");
    assert_eq!(grower.memory_byte_seconds, 300.0, "300 B held for 1 s");
    drop(clock);
}

#[test]
fn nested_jobs_charge_memory_to_the_innermost_job() {
    let _turn = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let clock = ScriptedClock::install();
    let meter = Meter::new();
    let outer = meter.start(spec("outer"));
    let inner = meter.start(spec("inner"));
    let (a, b) = outer.run(|| {
        let a = inner.run(|| raw_alloc(700, 8));
        let b = raw_alloc(200, 8);
        (a, b)
    });
    clock.advance(Duration::from_secs(1));
    raw_free(a);
    raw_free(b);
    assert_eq!(inner.finish().memory_byte_seconds, 700.0);
    assert_eq!(outer.finish().memory_byte_seconds, 200.0);
    drop(clock);
}

#[test]
fn the_integral_is_not_a_constant() {
    // Same script, twice as long: twice the integral. Guards against a formula that ignores time.
    let _turn = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let clock = ScriptedClock::install();
    let meter = Meter::new();
    let mut figures = Vec::new();
    for secs in [1, 2] {
        let job = meter.start(spec("twice"));
        let block = job.run(|| raw_alloc(4096, 16));
        clock.advance(Duration::from_secs(secs));
        raw_free(block);
        figures.push(job.finish().memory_byte_seconds);
    }
    assert_eq!(figures, [4096.0, 8192.0]);
    drop(clock);
}

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        size: usize,
        align: usize,
    },
    /// Free the i-th live block (modulo the live count), on this thread or another.
    Free {
        index: usize,
        elsewhere: bool,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..5000, prop::sample::select(vec![1usize, 8, 16, 64, 4096]))
            .prop_map(|(size, align)| Op::Alloc { size, align }),
        (any::<usize>(), any::<bool>()).prop_map(|(index, elsewhere)| Op::Free { index, elsewhere }),
        (0u64..5000).prop_map(|ms| Op::Advance { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any script of allocations, frees (here or on another thread) and clock steps: the job's integral and
    /// peak equal a model that keeps every block's size and allocation time.
    #[test]
    fn any_script_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let _turn = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        let clock = ScriptedClock::install();
        let meter = Meter::new();
        let job = meter.start(spec("model"));
        let (mut now, mut expected_byte_ms, mut live, mut peak) = (0u64, 0u128, 0u64, 0u64);
        let mut blocks: Vec<(Block, u64)> = Vec::new();
        for op in &ops {
            match *op {
                Op::Alloc { size, align } => {
                    let block = job.run(|| raw_alloc(size, align));
                    blocks.push((block, now));
                    live += size as u64;
                    peak = peak.max(live);
                }
                Op::Free { index, elsewhere } => {
                    if blocks.is_empty() { continue; }
                    let (block, born) = blocks.swap_remove(index % blocks.len());
                    expected_byte_ms += (block.layout.size() as u128) * u128::from(now - born);
                    live -= block.layout.size() as u64;
                    if elsewhere {
                        std::thread::spawn(move || raw_free(block)).join().unwrap();
                    } else {
                        job.run(|| raw_free(block));
                    }
                }
                Op::Advance { ms } => {
                    clock.advance(Duration::from_millis(ms));
                    now += ms;
                }
            }
        }
        for (block, born) in &blocks {
            expected_byte_ms += (block.layout.size() as u128) * u128::from(now - born);
        }
        let record = job.finish();
        for (block, _) in blocks {
            raw_free(block);
        }
        drop(clock);
        prop_assert_eq!(record.memory_byte_seconds, expected_byte_ms as f64 / 1000.0);
        prop_assert_eq!(record.peak_bytes, peak);
    }
}

#[test]
fn reconciliation_sees_the_live_bytes_of_its_own_running_jobs_only() {
    let (ours, theirs) = (Meter::new(), Meter::new());
    let job = ours.start(spec("holds"));
    let other = theirs.start(spec("other"));
    let block = job.run(|| raw_alloc(1 << 20, 8));
    let other_block = other.run(|| raw_alloc(3 << 20, 8));
    let r = ours.reconcile();
    assert!(r.memory_metered);
    assert_eq!(r.running_jobs, 1);
    assert_eq!(r.jobs_live_bytes, 1 << 20, "its job's MiB, not the other meter's 3 MiB: {r:?}");
    assert_eq!(theirs.reconcile().jobs_live_bytes, 3 << 20);
    raw_free(block);
    raw_free(other_block);
    assert_eq!(ours.reconcile().jobs_live_bytes, 0, "freed");
    job.finish();
    other.finish();
    let r = ours.reconcile();
    assert_eq!((r.running_jobs, r.finished_jobs, r.jobs_live_bytes), (0, 1, 0));
}

#[test]
fn a_job_dropped_unfinished_frees_its_slot_and_stops_counting_as_running() {
    let meter = Meter::new();
    let job = meter.start(spec("dropped"));
    assert!(job.meters_memory());
    let block = job.run(|| raw_alloc(4096, 8));
    assert_eq!(meter.reconcile().jobs_live_bytes, 4096);
    drop(job);
    let r = meter.reconcile();
    assert_eq!((r.running_jobs, r.finished_jobs, r.jobs_live_bytes), (0, 0, 0), "{r:?}");
    raw_free(block);
}
