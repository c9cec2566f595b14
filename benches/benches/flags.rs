//! Reading a flag: Brownout's handle beside what a user would reach for otherwise, in the same run.
//!
//! Run: `cargo bench -p benches --bench flags`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;

use criterion::{Criterion, criterion_group, criterion_main};
use degrade_flags::flags::{FlagKind, Flags};

fn flags(c: &mut Criterion) {
    let mut g = c.benchmark_group("flag_read");
    let flags = Flags::new();
    flags.define("quotes.cached_only", FlagKind::Bool, "false").unwrap();
    flags.define("quotes.source", FlagKind::Strategy(vec!["live".into(), "cached".into()].into()), "live").unwrap();
    let handle = flags.bool("quotes.cached_only").unwrap();
    let strategy = flags.strategy("quotes.source").unwrap();
    g.bench_function("brownout_bool_handle", |b| b.iter(|| black_box(&handle).get()));
    g.bench_function("brownout_strategy_handle", |b| b.iter(|| black_box(&strategy).get().len()));

    // The usual alternative: a map of flags behind a reader-writer lock, looked up by name.
    let map: RwLock<HashMap<String, bool>> = RwLock::new(
        (0..32)
            .map(|i| (format!("service.flag_{i}"), i % 2 == 0))
            .chain([("quotes.cached_only".into(), false)])
            .collect(),
    );
    g.bench_function("rwlock_hashmap_lookup", |b| {
        b.iter(|| *map.read().unwrap().get(black_box("quotes.cached_only")).unwrap())
    });
    // And the registry's own lookup by name, which handles avoid.
    g.bench_function("brownout_get_by_name", |b| {
        b.iter(|| flags.get(black_box("quotes.cached_only")).unwrap().0.len())
    });
    g.finish();
}

criterion_group!(benches, flags);
criterion_main!(benches);
