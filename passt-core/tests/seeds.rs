//! Replays the checked-in fuzz seeds (`fuzz/seeds/<target>/`) through the
//! same bodies the fuzz targets run, on the stable test runner.

use std::fs;
use std::path::PathBuf;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut n = 0;
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let data = fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "seed {} fails", path.display());
        n += 1;
    }
    n
}

#[test]
fn port_spec_seeds() {
    assert!(replay("port_spec", passt_core::fuzzing::port_spec) >= 15);
}

#[test]
fn frame_seeds() {
    assert!(replay("frame", passt_core::fuzzing::frame) >= 140);
}

#[test]
fn translator_seeds() {
    assert!(replay("translator", passt_core::fuzzing::translator) >= 10);
}

#[test]
fn stream_seeds() {
    assert!(replay("stream", passt_core::fuzzing::stream) >= 6);
}

#[test]
fn control_seeds() {
    assert!(replay("control", passt_core::fuzzing::control) >= 5);
}
