//! A real PostgreSQL server for one test: Debian's `postgresql` package
//! (scripts/setup.sh installs it), a cluster in a temporary folder, listening
//! on 127.0.0.1 on a free port, stopped when the [`Postgres`] is dropped.
//!
//! `initdb` runs once per machine into a cached template cluster (in the
//! temporary directory); each server starts from a copy of it, so every test
//! gets its own server and database in well under a second of setup.
//! PostgreSQL refuses to run as root (CI runs as root): then the folders
//! belong to the `postgres` user and `initdb`/`postgres` run through
//! `runuser -u postgres --`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The database every server is started with.
pub const DATABASE: &str = "satchel";
/// The cluster's superuser (trust authentication on loopback).
pub const USER: &str = "satchel";

/// A running PostgreSQL server of one test.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
}

impl Postgres {
    /// Starts a fresh server holding an empty database [`DATABASE`].
    /// Panics, naming scripts/setup.sh, when PostgreSQL is not installed.
    pub fn start() -> Postgres {
        let bin = binaries();
        let template = template(&bin);
        let dir = tempfile::tempdir().expect("a temporary folder for PostgreSQL");
        // The postgres user must reach the cluster inside it.
        run(Command::new("chmod").arg("755").arg(dir.path()));
        run(Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(data_dir(dir.path())));
        std::fs::create_dir_all(socket_dir(dir.path())).expect("socket folder");
        if as_root() {
            run(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(socket_dir(dir.path())));
        }
        let mut pg = Postgres {
            bin,
            dir,
            child: None,
            port: 0,
        };
        pg.run_server();
        let created = pg.tool("createdb").arg(DATABASE).output();
        let created = created.expect("createdb runs");
        assert!(
            created.status.success(),
            "createdb {DATABASE}: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        pg
    }

    /// The catalog URL of the test's database.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid_file = data_dir(self.dir.path()).join("postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned));
        match pid {
            // The postmaster itself, not runuser: SIGINT is a fast shutdown.
            Some(pid) => {
                let _ = Command::new("kill").args(["-INT", &pid]).status();
            }
            None => {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }

    /// Starts the server again on the same cluster and port.
    pub fn restart(&mut self) {
        self.stop();
        self.run_server();
    }

    /// The server's log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn run_server(&mut self) {
        if self.port == 0 {
            self.port = free_port();
        }
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("log file");
        let mut cmd = as_postgres(&self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(data_dir(self.dir.path()))
            .arg("-k")
            .arg(socket_dir(self.dir.path()))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        self.child = Some(cmd.spawn().expect("postgres starts"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self.tool("pg_isready").arg("-q").status();
            if ready.is_ok_and(|s| s.success()) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "postgres exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within a minute:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A client tool of this PostgreSQL pointed at the server.
    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER]);
        cmd
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest PostgreSQL's binaries under /usr/lib/postgresql/*/bin.
fn binaries() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): \
             run scripts/setup.sh, which installs Debian's postgresql package"
        ),
    }
}

fn as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A command that runs as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// The initialized template cluster, made once and reused by every server.
fn template(bin: &Path) -> PathBuf {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| make_template(bin)).clone()
}

fn make_template(bin: &Path) -> PathBuf {
    let version = bin
        .parent()
        .and_then(|p| p.file_name())
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner = if as_root() { "postgres" } else { "user" };
    let base = std::env::temp_dir();
    let template = base.join(format!("satchel-testkit-pg{version}-{owner}"));
    if template.join(".complete").exists() {
        return template;
    }
    // Half made by a process that died: made again.
    let _ = std::fs::remove_dir_all(&template);
    // Made beside, then renamed: concurrent test processes never see half a
    // cluster.
    let making = base.join(format!(
        "satchel-testkit-pg{version}-{owner}.{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&making);
    std::fs::create_dir_all(&making).expect("template folder");
    if as_root() {
        run(Command::new("chown").arg("postgres:postgres").arg(&making));
    }
    let out = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&making)
        .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--no-sync"])
        .args(["--locale=C"])
        .output()
        .expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Owned like the cluster, so the copy keeps the owner postgres wants.
    let complete = making.join(".complete");
    std::fs::write(&complete, b"").expect("template marker");
    if as_root() {
        run(Command::new("chown")
            .arg("postgres:postgres")
            .arg(&complete));
    }
    if std::fs::rename(&making, &template).is_err() {
        // Another process made it first.
        let _ = std::fs::remove_dir_all(&making);
    }
    template
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn socket_dir(dir: &Path) -> PathBuf {
    dir.join("socket")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn run(cmd: &mut Command) {
    let status = cmd.status().expect("command runs");
    assert!(status.success(), "{cmd:?} failed: {status}");
}
