//! Instructions per 64-byte alloc + free for every allocator case of `benches::alloc`, counted by callgrind:
//! repeatable on a noisy, shared machine where wall time is not (one thread; callgrind serialises threads).
//!
//! Run: `cargo bench -p benches --bench alloc_instructions` (needs `valgrind`). Each case runs under
//! `valgrind --tool=callgrind` with 20 000 and 220 000 pairs, counting only the loop of pairs
//! (`benches::measured`); the difference over 200 000 is one pair's cost, free of start-up. Under `cargo test` it only checks that every case runs.

/// cost-meter's allocator is this binary's global allocator, so its jobs meter memory (as in a user's binary);
/// each case still calls its own allocator directly.
#[global_allocator]
static GLOBAL: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

const SHORT: u64 = 20_000;
const LONG: u64 = 220_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some((case, n)) = benches::run_request(&args) {
        benches::alloc::run_case(case, n).unwrap_or_else(|| panic!("unknown case {case}"));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        for (case, ..) in benches::alloc::CASES {
            benches::alloc::run_case(case, 1_000).expect("known case");
        }
        println!("alloc_instructions: {} cases run", benches::alloc::CASES.len());
        return;
    }
    println!("{:<28} {:>14} {:>10}", "case (64 B alloc+free)", "instr/pair", "vs system");
    let mut system = 0.0;
    for (case, ..) in benches::alloc::CASES {
        let per_pair = benches::callgrind_per_call_measured(case, SHORT, LONG);
        if case == "system" {
            system = per_pair;
        }
        println!("{case:<28} {per_pair:>14.1} {:>9.2}×", per_pair / system);
    }
}
