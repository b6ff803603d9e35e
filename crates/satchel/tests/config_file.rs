//! The service's configuration file (issue 13, point 2): `satchel serve
//! --config FILE`; flags over environment over the file over the defaults;
//! an unknown key or a bad value is an error naming the key and its line;
//! `--check-config` prints the effective configuration with secrets masked.

mod common;
use common::*;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// `satchel serve --config FILE --check-config`, never the machine's own
/// SATCHEL_* settings.
fn check(config: &Path) -> Command {
    let mut cmd = satchel();
    for var in [
        "SATCHEL_LISTEN",
        "SATCHEL_MAX_REQUEST_BYTES",
        "SATCHEL_PASSWORD_CHECKS",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["serve", "--check-config", "--config"])
        .arg(config);
    cmd
}

/// The effective configuration `--check-config` prints (itself TOML).
fn effective(cmd: &mut Command) -> toml::Table {
    let out = ok(cmd);
    out.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("--check-config printed no TOML ({e}): {out}"))
}

fn listen_of(t: &toml::Table) -> &str {
    t["listen"].as_str().expect("listen")
}

#[test]
fn settings_come_from_flags_then_environment_then_the_file_then_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "satchel.toml",
        "listen = \"127.0.0.1:9001\"\ndata = \"from-file\"\n\n[limits]\nmax_request_bytes = 1000000\npassword_checks = 3\ns3_cache_bytes = 0\n",
    );
    let from_file = effective(&mut check(&file));
    assert_eq!(listen_of(&from_file), "127.0.0.1:9001");
    // A relative path in the file is relative to the file's folder.
    assert_eq!(
        from_file["data"].as_str(),
        dir.path().join("from-file").to_str()
    );
    assert_eq!(
        from_file["limits"]["max_request_bytes"].as_integer(),
        Some(1_000_000)
    );
    assert_eq!(from_file["limits"]["password_checks"].as_integer(), Some(3));
    assert_eq!(from_file["limits"]["s3_cache_bytes"].as_integer(), Some(0));

    let from_env = effective(
        check(&file)
            .env("SATCHEL_LISTEN", "127.0.0.1:9002")
            .env("SATCHEL_MAX_REQUEST_BYTES", "2000000")
            .env("SATCHEL_S3_CACHE_BYTES", "1048576"),
    );
    assert_eq!(
        from_env["limits"]["s3_cache_bytes"].as_integer(),
        Some(1_048_576)
    );
    assert_eq!(listen_of(&from_env), "127.0.0.1:9002");
    assert_eq!(
        from_env["limits"]["max_request_bytes"].as_integer(),
        Some(2_000_000)
    );
    assert_eq!(
        from_env["limits"]["password_checks"].as_integer(),
        Some(3),
        "the file fills the rest"
    );

    let from_flag = effective(check(&file).env("SATCHEL_LISTEN", "127.0.0.1:9002").args([
        "--listen",
        "127.0.0.1:9003",
        "--password-checks",
        "5",
    ]));
    assert_eq!(listen_of(&from_flag), "127.0.0.1:9003");
    assert_eq!(from_flag["limits"]["password_checks"].as_integer(), Some(5));

    let empty = write(dir.path(), "empty.toml", "");
    let defaults = effective(&mut check(&empty));
    assert_eq!(listen_of(&defaults), "127.0.0.1:8480");
    assert_eq!(
        defaults["limits"]["max_request_bytes"].as_integer(),
        Some(256 * 1024 * 1024)
    );
    assert_eq!(
        defaults["limits"]["s3_cache_bytes"].as_integer(),
        Some(256 * 1024 * 1024)
    );
    assert!(
        defaults["data"]
            .as_str()
            .expect("data")
            .ends_with("satchel-data")
    );
}

#[test]
fn the_service_runs_with_the_settings_of_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "satchel.toml",
        "[limits]\nmax_request_bytes = 100000\n",
    );
    let server = Server::start_args(&[OsStr::new("--config"), file.as_os_str()], "http");
    let limits = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/limits", server.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .and_then(|r| r.text())
        .expect("GET /api/v1/limits");
    assert_eq!(json(&limits)["max_request_bytes"], 100_000, "{limits}");
}

#[test]
fn an_unknown_key_or_a_bad_value_is_an_error_naming_it_and_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "listen = \"127.0.0.1:9001\"\n[limits]\nmax_request_byte = 100000\n",
            "line 3, key limits.max_request_byte: unknown field `max_request_byte`",
        ),
        (
            "data = \"/srv/satchel\"\nlisten = 8480\n",
            "line 2, key listen: invalid type",
        ),
        (
            "[limits]\n\nmax_request_bytes = 1000\n",
            "line 3, key limits.max_request_bytes: must be at least 65536 bytes",
        ),
        (
            "[ldap]\nurl = \"ldaps://x\"\n",
            "line 1, key ldap: missing field `base_dn`",
        ),
    ];
    for (text, wanted) in cases {
        let file = write(dir.path(), "bad.toml", text);
        let wanted = format!("{}, {wanted}", file.display());
        // Both the check and a real start refuse it, before opening anything.
        let data = dir.path().join("data");
        let mut start = satchel();
        start
            .args(["serve", "--listen", "127.0.0.1:1", "--config"])
            .arg(&file)
            .arg("--data")
            .arg(&data);
        for cmd in [&mut check(&file), &mut start] {
            let out = run(cmd);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{text:?} was accepted");
            assert!(
                err.contains(&wanted),
                "{text:?}: wanted {wanted:?} in {err}"
            );
        }
        assert!(
            !data.exists(),
            "a refused configuration created the data folder"
        );
    }
}

#[test]
fn check_config_masks_secrets_and_checks_the_tls_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "satchel.toml",
        "catalog = \"postgres://satchel:s3cret-pw@db.example.com:5432/satchel\"\n",
    );
    let key_hex = "ab".repeat(32);
    let out = ok(check(&file).env("SATCHEL_KEY", &key_hex));
    assert!(
        out.contains("catalog = \"postgres://satchel:***@db.example.com:5432/satchel\""),
        "{out}"
    );
    assert!(
        !out.contains("s3cret-pw") && !out.contains(&key_hex),
        "a secret printed: {out}"
    );
    assert!(out.contains("from SATCHEL_KEY (not shown)"), "{out}");

    // TLS files that cannot be read make the check fail, naming the file.
    let tls = write(
        dir.path(),
        "tls.toml",
        "[tls]\ncert = \"missing-cert.pem\"\nkey = \"missing-key.pem\"\n",
    );
    let out = run(&mut check(&tls));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "missing TLS files passed the check");
    assert!(
        err.contains(&format!(
            "TLS certificate file {}",
            dir.path().join("missing-cert.pem").display()
        )),
        "{err}"
    );
    let half = write(dir.path(), "half.toml", "[tls]\ncert = \"cert.pem\"\n");
    let err = String::from_utf8_lossy(&run(&mut check(&half)).stderr).into_owned();
    assert!(err.contains("a TLS certificate without its key"), "{err}");
}
