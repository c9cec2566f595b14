//! The result cache under racing threads: writers store one key over and over while readers restore it. A
//! reader must never find a torn entry (a blob or manifest half written): the store writes each file to a
//! temporary file and renames it, so a reader sees the old whole file or the new whole file.

use std::sync::atomic::{AtomicBool, Ordering};

use brownout_cost::cache::{CacheKey, Cost, RestoreError, ResultCache};

#[test]
fn readers_never_see_a_torn_entry_while_writers_store_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ResultCache::open(dir.path().join("cache")).unwrap();
    let output = dir.path().join("features.bin");
    let bytes: Vec<u8> = (0..=255u8).collect::<Vec<u8>>().repeat(4096); // 1 MiB
    std::fs::write(&output, &bytes).unwrap();
    let key = CacheKey::builder().part("features", "momentum").version("1").build();
    let cost = Cost::new(1.0, 0.0);
    cache.store(&key, "team=research", std::slice::from_ref(&output), cost).unwrap();
    let writing = AtomicBool::new(true);
    let (mut served, mut corrupt) = (0u32, Vec::new());
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..60 {
                        cache.store(&key, "team=research", std::slice::from_ref(&output), cost).unwrap();
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let (mut served, mut corrupt) = (0u32, Vec::new());
                    while writing.load(Ordering::Relaxed) {
                        match cache.restore(&key) {
                            Ok(Some((_, n))) => {
                                assert_eq!(n, 1 << 20);
                                served += 1;
                            }
                            Ok(None) => panic!("the entry vanished while being rewritten"),
                            Err(RestoreError::Corrupt(c)) => corrupt.push(c.reason),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (served, corrupt)
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        writing.store(false, Ordering::Relaxed);
        for r in readers {
            let (n, c) = r.join().unwrap();
            served += n;
            corrupt.extend(c);
        }
    });
    assert!(corrupt.is_empty(), "{} torn reads, e.g. {}", corrupt.len(), corrupt[0]);
    assert!(served > 0, "no read overlapped the writes");
    assert_eq!(std::fs::read(&output).unwrap(), bytes, "the restored output is whole");
}
