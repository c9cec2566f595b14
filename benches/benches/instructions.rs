//! Instructions per call for every fault-layer case, counted by callgrind: repeatable on a noisy, shared
//! machine where wall time is not.
//!
//! Run: `cargo bench -p benches --bench instructions` (needs `valgrind`). Each case runs twice under
//! `valgrind --tool=callgrind`, with 20 000 and 120 000 calls; the difference over 100 000 calls is the cost
//! of one call, free of start-up and set-up. Under `cargo test` it only checks that every case runs.

const SHORT: u64 = 20_000;
const LONG: u64 = 120_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some((case, n)) = benches::run_request(&args) {
        benches::run_case(case, n).unwrap_or_else(|| panic!("unknown case {case}"));
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test`: every case runs and its calls succeed (rate 0.001 may fail a handful).
        for case in benches::CASES {
            let ok = benches::run_case(case, 1_000).expect("known case");
            assert!(ok >= 980, "{case}: only {ok} of 1000 calls succeeded");
        }
        println!("instructions: {} cases run; use `cargo bench --bench instructions` to count", benches::CASES.len());
        return;
    }
    // `cargo bench --bench instructions -- WORD...`: only the cases naming one of the words (and the bares).
    let filters: Vec<&String> = args.iter().skip(1).filter(|a| !a.starts_with('-')).collect();
    println!("{:<52} {:>14} {:>10}", "case", "instr/call", "vs bare");
    let mut bare = std::collections::HashMap::new();
    for case in benches::CASES {
        if !filters.is_empty() && !case.ends_with("/bare") && !filters.iter().any(|f| case.contains(f.as_str())) {
            continue;
        }
        let per_call = benches::callgrind_per_call(case, SHORT, LONG);
        let group = case.split('/').next().unwrap_or(case);
        if case.ends_with("/bare") {
            bare.insert(group, per_call);
        }
        println!("{case:<52} {per_call:>14.1} {:>+10.1}", per_call - bare.get(group).copied().unwrap_or(0.0));
    }
}
