//! `cost-meter run --cache` and `cost-meter cache`: a miss runs and stores, a hit restores and charges
//! nothing, version and input changes miss, a corrupt entry is a miss (reported, never served), racing runs
//! leave whole entries, statistics and garbage collection.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use brownout_cost::cache::sha256_hex;
use brownout_cost::read_records;

fn run_in(dir: &Path, cache: &Path, extra: &[&str], command: &str) -> Output {
    let cache = cache.to_str().unwrap();
    let args = ["run", "--team", "research", "--service", "features", "--cache", cache, "--outputs", "out.txt"];
    Command::new(env!("CARGO_BIN_EXE_cost-meter"))
        .current_dir(dir)
        .args(args)
        .args(extra)
        .args(["--", "sh", "-c", command])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs.log")).map_or(0, |t| t.lines().count())
}

/// Upper-cases `in.csv` into `out.txt` and counts its runs in `runs.log`.
const FEATURES: &str = "tr a-z A-Z < in.csv > out.txt; echo ran >> runs.log";

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "a,b\n1,2\n").unwrap();
    let cache = dir.path().join("cache");
    (dir, cache)
}

fn cache_entries(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("entries")).unwrap().map(|e| e.unwrap().path()).collect()
}

fn blobs(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(cache.join("blobs")).unwrap() {
        for b in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.push(b.unwrap().path());
        }
    }
    out
}

#[test]
fn a_miss_runs_and_stores_a_hit_restores_and_charges_nothing() {
    let (dir, cache) = setup();
    let key = ["--key-input", "in.csv", "--key-version", "v1"];
    let out = run_in(dir.path(), &cache, &key, FEATURES);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cache miss"), "{}", stderr(&out));
    assert_eq!(runs(dir.path()), 1);
    std::fs::remove_file(dir.path().join("out.txt")).unwrap();
    let out = run_in(dir.path(), &cache, &key, FEATURES);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cache hit") && stderr(&out).contains("the command did not run"), "{}", stderr(&out));
    assert_eq!(runs(dir.path()), 1, "a hit ran the command");
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "A,B\n1,2\n");
    let file = std::fs::File::open(dir.path().join("cost_records.jsonl")).unwrap();
    let (records, _) = read_records(BufReader::new(file)).unwrap();
    assert_eq!(records.iter().map(|r| r.cache_hit).collect::<Vec<_>>(), [false, true]);
    assert_eq!((records[1].cpu_seconds, records[1].memory_byte_seconds), (0.0, 0.0));
    let line = std::fs::read_to_string(dir.path().join("cost_records.jsonl")).unwrap();
    assert!(line.lines().nth(1).unwrap().contains("\"cache_hit\":true"));
    assert!(!line.lines().next().unwrap().contains("cache_hit"), "a miss's line is as before");
}

#[test]
fn a_version_an_input_or_a_command_change_misses() {
    let (dir, cache) = setup();
    let v1 = ["--key-input", "in.csv", "--key-version", "v1"];
    let v2 = ["--key-input", "in.csv", "--key-version", "v2"];
    for (key, command, runs_after) in [
        (&v1, FEATURES, 1),
        (&v1, FEATURES, 1),
        (&v2, FEATURES, 2),                // a schema/version bump
        (&v2, &format!("{FEATURES} "), 3), // another command line
    ] {
        let out = run_in(dir.path(), &cache, key, command);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(runs(dir.path()), runs_after);
    }
    std::fs::write(dir.path().join("in.csv"), "c,d\n").unwrap(); // new input content
    let out = run_in(dir.path(), &cache, &v2, FEATURES);
    assert!(out.status.success());
    assert_eq!(runs(dir.path()), 4);
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "C,D\n");
    // an --key-env variable's value is in the key
    let env = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_cost-meter"))
            .current_dir(dir.path())
            .args(["run", "--team", "research", "--service", "features", "--cache", cache.to_str().unwrap()])
            .args(["--outputs", "out.txt", "--key-env", "SEED", "--", "sh", "-c", FEATURES])
            .env("SEED", value)
            .output()
            .unwrap()
    };
    assert!(env("1").status.success() && env("1").status.success());
    assert_eq!(runs(dir.path()), 5);
    assert!(env("2").status.success());
    assert_eq!(runs(dir.path()), 6);
}

#[test]
fn a_failed_command_stores_nothing() {
    let (dir, cache) = setup();
    let out = run_in(dir.path(), &cache, &[], &format!("{FEATURES}; exit 4"));
    assert_eq!(out.status.code(), Some(4));
    assert!(cache_entries(&cache).is_empty());
    let out = run_in(dir.path(), &cache, &[], &format!("{FEATURES}; exit 4"));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(runs(dir.path()), 2);
}

#[test]
fn a_corrupt_entry_is_a_miss_reported_and_never_served() {
    let (dir, cache) = setup();
    assert!(run_in(dir.path(), &cache, &[], FEATURES).status.success());
    // a flipped byte in the blob
    let blob = &blobs(&cache)[0];
    std::fs::write(blob, "A,B\n1,3\n").unwrap();
    std::fs::remove_file(dir.path().join("out.txt")).unwrap();
    let out = run_in(dir.path(), &cache, &[], FEATURES);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("corrupt entry not served"), "{}", stderr(&out));
    assert_eq!(runs(dir.path()), 2, "the command ran again");
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "A,B\n1,2\n", "corrupt bytes served");
    // the entry was replaced: the next run hits
    assert!(stderr(&run_in(dir.path(), &cache, &[], FEATURES)).contains("cache hit"));
    assert_eq!(runs(dir.path()), 2);
    // a manifest cut short: the same
    let manifest = &cache_entries(&cache)[0];
    let text = std::fs::read_to_string(manifest).unwrap();
    std::fs::write(manifest, &text[..text.len() / 2]).unwrap();
    let out = run_in(dir.path(), &cache, &[], FEATURES);
    assert!(stderr(&out).contains("corrupt entry not served"), "{}", stderr(&out));
    assert_eq!(runs(dir.path()), 3);
    // a missing blob: the same, and the output already there is left alone until the run rewrites it
    for b in blobs(&cache) {
        std::fs::remove_file(b).unwrap();
    }
    let out = run_in(dir.path(), &cache, &[], FEATURES);
    assert!(stderr(&out).contains("corrupt entry not served"), "{}", stderr(&out));
    assert_eq!(runs(dir.path()), 4);
}

/// Writes 16 MB of known bytes to out.txt: long enough to store that racing stores overlap.
const BIG: &str =
    "python3 -c \"import sys; open('out.txt','wb').write(bytes(range(256)) * 65536)\"; echo ran >> runs.log";

#[test]
fn racing_runs_on_one_key_leave_a_whole_entry_and_serve_whole_outputs() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let want = sha256_hex(&(0..=255u8).collect::<Vec<u8>>().repeat(65536));
    for round in 0..4 {
        let version = format!("round-{round}");
        // six real processes, started together, on one key, each in its own directory
        let children: Vec<_> = (0..6)
            .map(|i| {
                let dir = root.path().join(format!("r{round}-{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                let child = Command::new(env!("CARGO_BIN_EXE_cost-meter"))
                    .current_dir(&dir)
                    .args(["run", "--team", "research", "--service", "bench", "--cache", cache.to_str().unwrap()])
                    .args(["--outputs", "out.txt", "--key-version", &version, "--", "sh", "-c", BIG])
                    .stdin(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (dir, child)
            })
            .collect();
        for (dir, child) in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(!stderr(&out).contains("corrupt"), "a racing run saw a torn entry: {}", stderr(&out));
            let got = sha256_hex(&std::fs::read(dir.join("out.txt")).unwrap());
            assert_eq!(got, want, "round {round}: {} holds other bytes", dir.display());
        }
    }
    // every entry whole: its manifest parses and each blob's content is its name
    assert_eq!(cache_entries(&cache).len(), 4);
    for b in blobs(&cache) {
        let name = b.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(sha256_hex(&std::fs::read(&b).unwrap()), name);
    }
    assert_eq!(std::fs::read_dir(cache.join("tmp")).unwrap().count(), 0, "temporary files left behind");
}

#[test]
fn stats_say_hit_rate_bytes_and_cpu_saved_and_gc_keeps_the_recent() {
    let (dir, cache) = setup();
    for version in ["a", "a", "a", "b", "a"] {
        let out = run_in(dir.path(), &cache, &["--key-version", version], FEATURES);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cost-meter"))
        .args(["cache", "stats", "--json", "--cache", cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["total"]["lookups"], 5);
    assert_eq!(doc["total"]["hits"], 3);
    assert_eq!(doc["hit_rate"], 0.6);
    assert_eq!(doc["total"]["bytes_saved"], 3 * 8);
    assert!(doc["total"]["cpu_hours_saved"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["by_labels"][0]["labels"], "team=research,service=features,tier=interactive");
    let table = Command::new(env!("CARGO_BIN_EXE_cost-meter"))
        .args(["cache", "stats", "--cache", cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("60.0%"));

    // gc, least recently used first: two entries of 8 bytes each, `old` stored first but used last
    let (dir, cache) = setup();
    let gc = |size: &str| {
        Command::new(env!("CARGO_BIN_EXE_cost-meter"))
            .args(["cache", "gc", "--cache", cache.to_str().unwrap(), "--max-size", size])
            .output()
            .unwrap()
    };
    let old = ["--key-version", "old"];
    let new = ["--key-version", "new"];
    assert!(run_in(dir.path(), &cache, &old, FEATURES).status.success());
    std::fs::write(dir.path().join("in.csv"), "c,d\n3,4\n").unwrap();
    assert!(run_in(dir.path(), &cache, &new, FEATURES).status.success());
    assert!(stderr(&run_in(dir.path(), &cache, &old, FEATURES)).contains("cache hit")); // old used last
    assert_eq!(runs(dir.path()), 2);
    let out = gc("8");
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("removed 1 entry (8 bytes), kept 1 (8 bytes"), "{said}");
    assert_eq!(blobs(&cache).len(), 1);
    assert!(stderr(&run_in(dir.path(), &cache, &old, FEATURES)).contains("cache hit"), "the recent entry was dropped");
    assert!(stderr(&run_in(dir.path(), &cache, &new, FEATURES)).contains("cache miss"), "the old entry was kept");
    assert!(gc("0").status.success());
    assert!(cache_entries(&cache).is_empty() && blobs(&cache).is_empty());
    assert_eq!(gc("lots").status.code(), Some(2));
}

#[test]
fn the_git_commit_and_the_dirty_tree_are_in_the_key() {
    let (dir, cache) = setup();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(dir.path().join(".gitignore"), "cache/\nout.txt\nruns.log\ncost_records.jsonl\nreports/\n").unwrap();
    std::fs::write(dir.path().join("model.py"), "v = 1\n").unwrap();
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    let key = ["--key-git"];
    let mut expected = 0;
    for (change, misses) in [
        ("nothing yet", true),
        ("nothing", false),
        ("a tracked file edited", true),
        ("the same edit again", false),
        ("another edit of the same size", true),
        ("an untracked file", true),
        ("committed", true),
        ("an ignored file", false),
    ] {
        match change {
            "a tracked file edited" => std::fs::write(dir.path().join("model.py"), "v = 2\n").unwrap(),
            "another edit of the same size" => std::fs::write(dir.path().join("model.py"), "v = 3\n").unwrap(),
            "an untracked file" => std::fs::write(dir.path().join("notes.py"), "x\n").unwrap(),
            "committed" => {
                git(&["add", "."]);
                git(&["commit", "-qm", "two"]);
            }
            "an ignored file" => std::fs::write(dir.path().join("runs.log"), "").unwrap(),
            _ => {}
        }
        if change == "an ignored file" {
            expected = 0;
        }
        let out = run_in(dir.path(), &cache, &key, FEATURES);
        assert!(out.status.success(), "{change}: {}", stderr(&out));
        expected += usize::from(misses);
        assert_eq!(runs(dir.path()), expected, "{change}: {}", stderr(&out));
    }
}

#[test]
fn a_directory_of_outputs_is_restored_whole() {
    let (dir, cache) = setup();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_cost-meter"))
            .current_dir(dir.path())
            .args(["run", "--team", "research", "--service", "bench", "--cache", cache.to_str().unwrap()])
            .args(["--outputs", "artifacts", "--", "sh", "-c"])
            .arg("mkdir -p artifacts/flame && echo '{\"p50\": 12}' > artifacts/bench.json && echo svg > artifacts/flame/a.svg && echo ran >> runs.log")
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    std::fs::remove_dir_all(dir.path().join("artifacts")).unwrap();
    let out = run();
    assert!(stderr(&out).contains("restored 2 files"), "{}", stderr(&out));
    assert_eq!(runs(dir.path()), 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("artifacts/bench.json")).unwrap(), "{\"p50\": 12}\n");
    assert_eq!(std::fs::read_to_string(dir.path().join("artifacts/flame/a.svg")).unwrap(), "svg\n");
}
