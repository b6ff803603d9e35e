//! The service as a package (issue 13, point 5): `cargo deb` builds a .deb
//! holding the binary, the systemd units, the example configuration (a
//! conffile), the `satchel://` desktop entry and the docs; its maintainer
//! scripts create the `satchel` user; the units pass `systemd-analyze
//! verify`. The .deb is built from the debug binary the tests already built
//! (`--no-build --profile dev --fast`): no release build in CI.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cmd` and insists it succeeds; its standard output.
fn must(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The .deb, built into `dir` (cargo-deb is installed by scripts/setup.sh).
fn build_deb(dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    must(
        Command::new(cargo)
            .current_dir(workspace())
            .args(["deb", "-p", "satchel", "--no-build", "--profile", "dev"])
            .args(["--fast", "--no-strip", "-o"])
            .arg(dir),
    );
    std::fs::read_dir(dir)
        .expect("output folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb")
}

#[test]
fn the_deb_installs_the_binary_units_config_and_link_handler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deb = build_deb(dir.path());

    let listing = must(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for file in [
        "./usr/bin/satchel",
        "./lib/systemd/system/satchel.service",
        "./usr/lib/systemd/user/satchel-laptop.service",
        "./etc/satchel/satchel.toml",
        "./usr/share/applications/satchel-link.desktop",
        "./usr/share/doc/satchel/serve.md",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(file)),
            "{file} missing:\n{listing}"
        );
    }
    let conffiles = must(
        Command::new("dpkg-deb")
            .args(["-I"])
            .arg(&deb)
            .arg("conffiles"),
    );
    assert_eq!(conffiles.trim(), "/etc/satchel/satchel.toml");
    let postinst = must(
        Command::new("dpkg-deb")
            .args(["-I"])
            .arg(&deb)
            .arg("postinst"),
    );
    assert!(postinst.contains("adduser --system --group"), "{postinst}");

    // Installed into a scratch root: the binary runs, the config is valid.
    let root = dir.path().join("root");
    must(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/bin/satchel");
    let version = must(Command::new(&bin).arg("--version"));
    assert!(version.starts_with("satchel "), "{version}");
    let config = root.join("etc/satchel/satchel.toml");
    let effective = must(
        satchel()
            .args(["serve", "--check-config", "--config"])
            .arg(&config),
    );
    assert!(
        effective.contains("data = \"/var/lib/satchel\""),
        "{effective}"
    );

    verify_units(&root, &bin);
}

/// `systemd-analyze verify` on both units as installed, but with ExecStart
/// pointing at the scratch root's binary (verify checks that the command
/// exists, and nothing is installed in /usr/bin here).
fn verify_units(root: &Path, bin: &Path) {
    let units = root.join("verify");
    std::fs::create_dir_all(&units).expect("mkdir");
    let service = std::fs::read_to_string(root.join("lib/systemd/system/satchel.service"))
        .expect("service unit");
    assert!(service.contains("ProtectSystem=strict"));
    assert!(service.contains("User=satchel"));
    assert!(service.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    let laptop = std::fs::read_to_string(root.join("usr/lib/systemd/user/satchel-laptop.service"))
        .expect("user unit");
    let bin = bin.to_str().expect("utf-8 path");
    for (name, text) in [
        ("satchel.service", service),
        ("satchel-laptop.service", laptop),
    ] {
        let path = units.join(name);
        std::fs::write(&path, text.replace("/usr/bin/satchel", bin)).expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (scripts/setup.sh installs it)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{name}: {err}"
        );
    }
}
