//! HTTPS (issue 13, point 1): `satchel serve --tls-cert --tls-key` with a
//! private CA made here (rcgen); the CLI and a laptop trust it with
//! `--ca-file` / SATCHEL_CA_FILE, and refuse the service without it, saying
//! how to trust it; console sessions are `Secure` with HSTS; SIGHUP swaps the
//! certificate (and keeps it when the new files are bad).

mod common;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MB: &str = "tess@example.com";

/// A private certificate authority in a temporary folder.
struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Satchel Test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA");
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// Signs a new certificate for 127.0.0.1 into server.pem / server.key;
    /// returns its DER bytes.
    fn issue(&self) -> Vec<u8> {
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        std::fs::write(self.cert(), cert.pem()).expect("write cert");
        std::fs::write(self.key(), key.serialize_pem()).expect("write key");
        cert.der().to_vec()
    }

    /// A service serving HTTPS with the current server.pem / server.key.
    fn serve(&self) -> Server {
        let (cert, key) = (self.cert(), self.key());
        let args = [
            OsStr::new("--tls-cert"),
            cert.as_os_str(),
            OsStr::new("--tls-key"),
            key.as_os_str(),
        ];
        Server::start_args(&args, "https")
    }

    /// An HTTP client trusting only this CA, following no redirects.
    fn client(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(self.ca()).expect("read CA");
        let ca = reqwest::Certificate::from_pem(&pem).expect("CA pem");
        reqwest::blocking::Client::builder()
            .tls_certs_only([ca])
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// The DER certificate the service at `url` presents now.
    fn served_certificate(&self, url: &str) -> Vec<u8> {
        let resp = self
            .client()
            .get(format!("{url}/console/login"))
            .send()
            .expect("HTTPS request");
        let info = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .expect("TLS info");
        info.peer_certificate().expect("peer certificate").to_vec()
    }
}

fn with_ca(mut cmd: std::process::Command, ca: &Path) -> std::process::Command {
    cmd.env("SATCHEL_CA_FILE", ca);
    cmd
}

fn stderr_of(cmd: &mut std::process::Command) -> String {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded without the CA");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The refusal names the service and says how to trust it.
fn assert_clear_refusal(stderr: &str, url: &str) {
    assert!(
        stderr.contains(&format!(
            "the service at {url} presented a TLS certificate that is not trusted"
        )) && stderr.contains("--ca-file")
            && stderr.contains("SATCHEL_CA_FILE")
            && stderr.lines().count() == 1,
        "unclear refusal: {stderr}"
    );
}

#[test]
fn commands_trust_a_private_ca_given_with_ca_file_and_refuse_without() {
    let pki = Pki::new();
    pki.issue();
    let server = pki.serve();
    assert!(server.url.starts_with("https://"));

    ok(with_ca(server.admin(), &pki.ca()).args(["mailbox", "add", MB]));
    let listed = ok(server
        .admin()
        .args(["mailbox", "list", "--ca-file"])
        .arg(pki.ca()));
    assert!(listed.contains(MB), "mailbox list over HTTPS: {listed}");

    let refused = stderr_of(server.admin().args(["mailbox", "list"]));
    assert_clear_refusal(&refused, &server.url);
}

#[test]
fn a_laptop_sets_up_and_syncs_over_https_with_the_ca_it_was_given() {
    let pki = Pki::new();
    pki.issue();
    let server = pki.serve();
    let admin = |args: &[&str]| ok(with_ca(server.admin(), &pki.ca()).args(args));
    admin(&["mailbox", "add", MB]);
    let raw = "From: a@example.org\r\nTo: tess@example.com\r\nSubject: over tls\r\n\r\nencrypted walrus\r\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, raw).expect("write");
    admin(&["import", MB, eml.to_str().expect("utf8")]);
    run_with_stdin(
        with_ca(server.admin(), &pki.ca()).args(["user", "add", "tess", "--password-stdin"]),
        "tess-password-1",
    );
    admin(&["mailbox", "grant", MB, "tess"]);
    admin(&["offline", "enable", MB]);
    admin(&["offline", "sync-now"]);

    let home = dir.path().join("home");
    let setup = |extra: &[&OsStr]| {
        let mut cmd = laptop_in(&home);
        cmd.args([
            "setup",
            "--server",
            &server.url,
            "--user",
            "tess",
            "--password-stdin",
        ])
        .args(extra);
        output_with_stdin(&mut cmd, "tess-password-1")
    };
    let refused = setup(&[]);
    assert!(!refused.status.success(), "setup trusted an unknown CA");
    assert_clear_refusal(&String::from_utf8_lossy(&refused.stderr), &server.url);
    assert!(
        !home.join("config.json").exists(),
        "a refused setup stored a configuration"
    );

    let done = setup(&[OsStr::new("--ca-file"), pki.ca().as_os_str()]);
    assert!(
        done.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    // The CA file may go: the home keeps its own copy for every later sync.
    std::fs::remove_file(pki.ca()).expect("remove CA file");
    let report = json(&ok(laptop_in(&home).args(["sync", "--json"])));
    let synced = synced_mailbox(&report, MB);
    assert_eq!(synced["messages"], 1, "{report}");
    let id = sha256_hex(raw.as_bytes());
    let opened = ok(laptop_in(&home).args(["open", &format!("satchel://{MB}/{id}")]));
    assert_eq!(opened, raw);
}

#[test]
fn console_sign_in_over_https_sets_a_secure_cookie_and_hsts() {
    let pki = Pki::new();
    pki.issue();
    let server = pki.serve();
    let resp = pki
        .client()
        .post(format!("{}/console/login", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=admin&password={ADMIN_PASSWORD}"))
        .send()
        .expect("sign in");
    assert!(resp.status().is_redirection(), "sign-in: {}", resp.status());
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for wanted in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(&wanted), "{wanted} missing: {cookie}");
    }
    let hsts = resp
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok());
    assert_eq!(hsts, Some("max-age=31536000"));

    // Plain HTTP says neither (a browser must not be told to insist on HTTPS).
    let plain = Server::start();
    let resp = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/console/login", plain.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=admin&password={ADMIN_PASSWORD}"))
        .send()
        .expect("sign in");
    let cookie = resp.headers().get("set-cookie").expect("cookie");
    assert!(!cookie.to_str().expect("ascii").contains("Secure"));
    assert!(resp.headers().get("strict-transport-security").is_none());
}

fn hangup(server: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits until `cond` holds (the service acts on a signal when it gets to it).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_the_old_one_when_the_new_is_bad() {
    let pki = Pki::new();
    let first = pki.issue();
    let server = pki.serve();
    assert_eq!(pki.served_certificate(&server.url), first);

    std::fs::write(pki.cert(), "not a certificate\n").expect("spoil the certificate");
    hangup(&server);
    eventually("the bad certificate is reported", || {
        std::fs::read_to_string(&server.log)
            .unwrap_or_default()
            .contains("SIGHUP: kept the previous TLS certificate")
    });
    let log = std::fs::read_to_string(&server.log).expect("log");
    assert!(
        log.contains(&pki.cert().display().to_string()),
        "the log names the file: {log}"
    );
    assert_eq!(
        pki.served_certificate(&server.url),
        first,
        "the old certificate stays"
    );

    let second = pki.issue();
    assert_ne!(first, second);
    hangup(&server);
    eventually("the new certificate is served", || {
        pki.served_certificate(&server.url) == second
    });
    ok(with_ca(server.admin(), &pki.ca()).args(["mailbox", "list"]));
}
