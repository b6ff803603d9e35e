//! Stamps the binary with the git commit it was built from
//! (`SATCHEL_COMMIT`, shown by `satchel --version`), or "unknown" when the
//! source is not a git checkout.

#[path = "build/git.rs"]
mod git;

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/git.rs");
    for file in git::watched(&dir) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let commit = git::commit(&dir).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SATCHEL_COMMIT={commit}");
}
