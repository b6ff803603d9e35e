//! Harnesses for Satchel's tests (a dev-dependency only): real engines the
//! tests start themselves, never mocks.

pub mod postgres;

use std::path::Path;

/// Copies the folder `from` (a fixture) to `to`, recursively: tests open the
/// copy, as opening may migrate it and a fixture must stay as released.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
