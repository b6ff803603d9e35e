//! `imaps://` against a real Dovecot with TLS and a private CA (issue 9,
//! point 12): with the CA's certificate in SATCHEL_IMAP_CA_FILE the run
//! archives; without it, or with a certificate for another name, the
//! connection is refused with a clear error and nothing is touched.

mod common;
mod imap_support;

use common::Server;
use common::dovecot::Dovecot;
use imap_support::*;
use std::path::Path;
use std::process::Command;

const MB: &str = "ines@example.com";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (apt-get install -y openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a server certificate it signs for `san` (e.g. `IP:127.0.0.1`).
fn private_ca(dir: &Path, san: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Satchel Test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=imap test",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName={san}\n")).expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    // Dovecot reads them as its own user.
    for f in ["server.pem", "server.key"] {
        let _ = Command::new("chmod").arg("644").arg(dir.join(f)).status();
    }
}

fn add_tls_mailbox(server: &Server, dc: &Dovecot, address: &str) {
    common::ok(
        server
            .admin()
            .args(["mailbox", "add", address, "--imap"])
            .arg(format!("imaps://127.0.0.1:{}", dc.tls_port))
            .args(["--imap-user", "ines", "--imap-password-env", "PW"])
            .env("PW", IMAP_PW),
    );
}

fn seeded(certs: &Path) -> Dovecot {
    let dc = Dovecot::start_tls(
        &[("ines", IMAP_PW)],
        &certs.join("server.pem"),
        &certs.join("server.key"),
    );
    let mut imap = dc.login("ines", IMAP_PW);
    for raw in pick_messages(200, 4, 0) {
        imap.append("INBOX", &["\\Seen"], OLD_DATE, &raw);
    }
    imap.logout();
    dc
}

#[test]
fn imaps_with_a_private_ca_archives_and_an_unverified_certificate_is_refused() {
    let certs = tempfile::tempdir().expect("tempdir");
    let _ = Command::new("chmod").arg("755").arg(certs.path()).status();
    private_ca(certs.path(), "IP:127.0.0.1");
    let dc = seeded(certs.path());
    let ca = certs.path().join("ca.pem");

    // Without the CA: refused, and said so.
    let server = Server::start();
    add_tls_mailbox(&server, &dc, MB);
    let err = archive_err(&server, &[MB, "--older-than", "1"]);
    assert!(err.contains("certificate does not verify"), "{err}");
    assert!(
        err.contains("SATCHEL_IMAP_CA_FILE"),
        "it says how to fix it: {err}"
    );
    drop(server);

    // With the CA: the run goes through TLS.
    let server = Server::start_with(&[("SATCHEL_IMAP_CA_FILE", ca.to_str().expect("utf8"))]);
    add_tls_mailbox(&server, &dc, MB);
    let run = archive_ok(&server, &[MB, "--older-than", "1"]);
    assert_eq!(run["archived"], 4, "{run}");
    drop(server);

    // A certificate for another name, even from the trusted CA: refused.
    let other = tempfile::tempdir().expect("tempdir");
    let _ = Command::new("chmod").arg("755").arg(other.path()).status();
    private_ca(other.path(), "DNS:mail.example.org");
    let dc2 = seeded(other.path());
    let ca2 = other.path().join("ca.pem");
    let server = Server::start_with(&[("SATCHEL_IMAP_CA_FILE", ca2.to_str().expect("utf8"))]);
    add_tls_mailbox(&server, &dc2, MB);
    let err = archive_err(&server, &[MB, "--older-than", "1"]);
    assert!(err.contains("certificate does not verify"), "{err}");

    // A CA file that holds no certificate is a clear configuration error.
    let empty = certs.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let server = Server::start_with(&[("SATCHEL_IMAP_CA_FILE", empty.to_str().expect("utf8"))]);
    add_tls_mailbox(&server, &dc, MB);
    let err = archive_err(&server, &[MB, "--older-than", "1"]);
    assert!(err.contains("holds no PEM certificate"), "{err}");
}
