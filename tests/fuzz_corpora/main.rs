//! The fuzz targets' committed inputs as plain tests: every file of `fuzz/seeds/<target>/`
//! and `fuzz/regressions/<target>/` (inputs that once crashed, kept after the fix) goes
//! through the same function the libFuzzer target calls (`fuzz/src/lib.rs`, compiled here
//! as a module). This is what CI runs; `cargo xtask fuzz` runs the real fuzzer.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
#[allow(unreachable_pub, dead_code)]
mod harness;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_seeds_and_a_libfuzzer_entry() {
    for (name, _) in harness::TARGETS {
        assert!(
            !inputs(&fuzz_dir().join("seeds").join(name)).is_empty(),
            "fuzz/seeds/{name} is empty"
        );
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&target)
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        assert!(
            text.contains(&format!("latchkey_fuzz::{name}(")),
            "{}",
            target.display()
        );
    }
}

#[test]
fn seeds_and_regressions_replay_without_a_panic() {
    let mut count = 0;
    for (name, run) in harness::TARGETS {
        for kind in ["seeds", "regressions"] {
            for input in inputs(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&input).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{name}: {} panicked", input.display());
                count += 1;
            }
        }
    }
    assert!(count >= harness::TARGETS.len(), "{count} inputs");
}
