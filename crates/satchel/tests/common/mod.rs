//! Test harness: a real `satchel serve` on a loopback port with its own data folder,
//! and the `satchel` binary driven as a person would.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-secret-1";

pub fn satchel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_satchel"));
    for var in [
        "SATCHEL_SERVER",
        "SATCHEL_USER",
        "SATCHEL_PASSWORD",
        "SATCHEL_TOKEN",
        "SATCHEL_DATA",
        "SATCHEL_HOME",
        "SATCHEL_KEY",
        "SATCHEL_KEY_FILE",
        "SATCHEL_CATALOG",
        "SATCHEL_IMAP_CA_FILE",
        "SATCHEL_CA_FILE",
        "SATCHEL_CONFIG",
        "SATCHEL_TLS_CERT",
        "SATCHEL_TLS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The SpamAssassin corpus, fetched by scripts/fetch-corpus.sh (README's test
/// command runs it). Missing corpus is a failure, never a skip.
pub fn corpus() -> PathBuf {
    let dir = std::env::var_os("SATCHEL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/satchel/corpus")
        });
    assert!(
        dir.join(".complete").exists(),
        "the test corpus is missing from {}: run scripts/fetch-corpus.sh (README's test command does)",
        dir.display()
    );
    dir
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    pub log: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_in(&data);
        s._dir = Some(dir);
        s
    }

    /// Starts a service on `data` (kept by the caller across restarts).
    pub fn start_in(data: &Path) -> Server {
        Server::start_in_with(data, &[])
    }

    /// A fresh service with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_in_with(&data, env);
        s._dir = Some(dir);
        s
    }

    /// Starts a service on `data` with extra environment variables, on a free
    /// port. Another test may take the same port between `free_port` and the
    /// service's bind: then the service exits, and it is started again on
    /// another port.
    pub fn start_in_with(data: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_on_free_port(data, env, &[], "http")
    }

    /// A fresh service started with extra `serve` arguments and environment
    /// variables, over plain HTTP.
    pub fn start_args_env(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_on_free_port(&data, env, args, "http");
        s._dir = Some(dir);
        s
    }

    fn start_on_free_port(
        data: &Path,
        env: &[(&str, &str)],
        args: &[&std::ffi::OsStr],
        scheme: &str,
    ) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let log = data.with_extension(format!("{port}.log"));
            let mut server = Server::spawn_args(data, port, log.as_path(), env, args, scheme);
            match server.wait_ready() {
                Ok(()) => return server,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("satchel serve did not start; log:\n{log}"),
            }
        }
        panic!("satchel serve found no free port in 5 tries");
    }

    fn spawn(data: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Server {
        Server::spawn_args(data, port, log, env, &[], "http")
    }

    /// A fresh service started with extra `serve` arguments; `scheme` is
    /// "https" when they turn TLS on.
    pub fn start_args(args: &[&std::ffi::OsStr], scheme: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_on_free_port(&data, &[], args, scheme);
        s._dir = Some(dir);
        s
    }

    fn spawn_args(
        data: &Path,
        port: u16,
        log: &Path,
        env: &[(&str, &str)],
        args: &[&std::ffi::OsStr],
        scheme: &str,
    ) -> Server {
        std::fs::create_dir_all(data.parent().expect("parent")).expect("mkdir");
        let logf = std::fs::File::create(log).expect("log file");
        let child = satchel()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data")
            .arg(data)
            .args(args)
            .env("SATCHEL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(env.iter().copied())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf)
            .spawn()
            .expect("spawn satchel serve");
        Server {
            child: Some(child),
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
            data: data.to_path_buf(),
            _dir: None,
            log: log.to_path_buf(),
        }
    }

    /// Waits until this service (not another process that happens to hold the
    /// port) says it listens; its log if it exits first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let listening = format!("on {}", self.url);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                self.child = None;
                return Err(log);
            }
            if log.contains(&listening)
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "satchel serve did not listen within 60 s; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// `satchel` aimed at this service as `user`.
    pub fn as_user(&self, user: &str, password: &str) -> Command {
        let mut cmd = satchel();
        cmd.env("SATCHEL_SERVER", &self.url)
            .env("SATCHEL_USER", user)
            .env("SATCHEL_PASSWORD", password);
        cmd
    }

    pub fn admin(&self) -> Command {
        self.as_user("admin", ADMIN_PASSWORD)
    }

    /// Runs an admin command and insists it succeeds.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        ok(self.admin().args(args))
    }

    pub fn add_user(&self, name: &str, password: &str) {
        run_with_stdin(
            self.admin().args(["user", "add", name, "--password-stdin"]),
            password,
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run satchel")
}

/// Runs and asserts success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "command failed: {cmd:?}\nstatus {}\nstdout {}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs with `input` (and a newline) on standard input; success or not.
pub fn output_with_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{input}\n").as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs with `input` on standard input and asserts success.
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let out = output_with_stdin(cmd, input);
    assert!(
        out.status.success(),
        "command failed: {cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A child process killed and reaped when the test lets go of it (an agent,
/// a second service).
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// The ids `satchel search ARGS --json` finds, as the administrator (up to
    /// 10,000).
    pub fn search_ids(&self, args: &[&str]) -> Vec<String> {
        let mut cmd = self.admin();
        cmd.arg("search")
            .args(args)
            .args(["--json", "--limit", "10000"]);
        let v = json(&ok(&mut cmd));
        v["hits"]
            .as_array()
            .unwrap_or_else(|| panic!("no hits in {v}"))
            .iter()
            .filter_map(|h| h["id"].as_str().map(str::to_string))
            .collect()
    }
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One mailbox's entry in the report of `satchel laptop sync --json`.
pub fn synced_mailbox<'a>(report: &'a serde_json::Value, mb: &str) -> &'a serde_json::Value {
    report["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .find(|m| m["mailbox"] == mb)
        .unwrap_or_else(|| panic!("{mb} not in {report}"))
}

/// The ids a `retention apply --json` report removed, sorted.
pub fn removed_ids(report: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = report["removed"]
        .as_array()
        .unwrap_or_else(|| panic!("no removed list in {report}"))
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---- laptop client helpers (issue 5) ----

/// `satchel laptop ...` in the home `home`.
pub fn laptop_in(home: &Path) -> Command {
    let mut cmd = satchel();
    cmd.env("SATCHEL_HOME", home).arg("laptop");
    cmd
}

/// Sets up the laptop home `home` for `user` of `server`, then syncs it.
pub fn laptop_synced(server: &Server, user: &str, password: &str, home: &Path) {
    run_with_stdin(
        laptop_in(home)
            .args(["setup", "--server", &server.url, "--user", user])
            .arg("--password-stdin"),
        password,
    );
    ok(laptop_in(home).args(["sync", "--json"]));
}

impl Server {
    /// Starts a service on `data` listening on `port`: brings a killed
    /// service back where laptops configured with its URL expect it.
    pub fn start_in_at(data: &Path, port: u16) -> Server {
        let log = data.with_extension(format!("{port}.again.log"));
        let mut server = Server::spawn(data, port, &log, &[]);
        if let Err(log) = server.wait_ready() {
            panic!("satchel serve did not start again on port {port}; log:\n{log}");
        }
        server
    }
}

/// The first `n` messages of the corpus Maildir from `skip` on, as file paths
/// (sorted by name, so the same call gives the same messages).
pub fn corpus_files(skip: usize, n: usize) -> Vec<PathBuf> {
    let cur = corpus().join("maildir/cur");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&cur)
        .expect("corpus maildir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files.into_iter().skip(skip).take(n).collect()
}

/// Imports files into a mailbox (in batches, to keep command lines short).
pub fn import_files(server: &Server, mailbox: &str, files: &[PathBuf]) {
    for chunk in files.chunks(500) {
        let mut cmd = server.admin();
        cmd.args(["import", mailbox]);
        for f in chunk {
            cmd.arg(f);
        }
        ok(&mut cmd);
    }
}

pub mod browser;
pub mod cluster;
pub mod console;
pub mod dovecot;
pub mod ldap;
pub mod process;
pub mod proxy;
pub mod seaweed;
pub mod smalldisk;

/// The bytes of every pack file in the data folder's default repository.
pub fn pack_bytes(data: &Path) -> u64 {
    let root = data.join("repositories/default/packs");
    let mut total = 0;
    for fan in std::fs::read_dir(&root).expect("packs") {
        for f in std::fs::read_dir(fan.expect("fan").path()).expect("fan") {
            total += f.expect("file").metadata().expect("size").len();
        }
    }
    total
}
