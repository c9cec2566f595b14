//! Every chaos config shipped in `configs/chaos/` loads (the GameDay scenario file has its own schema and is
//! tested by the `gameday` example).

use std::path::Path;

use brownout_chaos::{Controller, Environment};

#[test]
fn every_shipped_chaos_config_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml || path.file_stem().is_some_and(|s| s == "gameday") {
            continue;
        }
        // Disarmed, so loading starts no pressure and arms nothing.
        let mut config = brownout_chaos::ChaosConfig::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
        config.armed = false;
        let controller = Controller::builder().environment(Environment::Test).build();
        controller.load(config).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        loaded += 1;
    }
    assert!(loaded >= 2, "expected the shipped examples in {}", dir.display());
}
