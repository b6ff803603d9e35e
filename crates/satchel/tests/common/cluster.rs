//! Several `satchel serve` nodes serving one archive (issue 12 point 3): a
//! real PostgreSQL catalog (satchel-testkit), a real SeaweedFS bucket whose
//! S3 repository [`REPO`] holds every mailbox's mail, and N nodes, each with
//! its own data folder (its own search index) and port, all started with the
//! same catalog URL, S3 credentials and `SATCHEL_KEY` (the key that seals
//! IMAP passwords: a password sealed by one node opens on every other).
//!
//! ```ignore
//! let mut cluster = Cluster::start(2);
//! cluster.add_mailbox("alice@example.com");          // in the S3 repository
//! import_files(cluster.node(0), "alice@example.com", &files);
//! cluster.node(1).search_ids(&["quokka"]);           // another node
//! let third = cluster.add_node();                      // empty data folder
//! cluster.restart(0);                                  // same data, same port
//! ```
#![allow(dead_code)]

use super::seaweed::Seaweed;
use super::{Server, run};
use satchel_testkit::postgres::Postgres;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The S3 repository every mailbox the cluster adds lives in.
pub const REPO: &str = "shared";

/// The key that seals IMAP passwords, the same on every node (64 hex digits).
pub const KEY: &str = "5a7c4e1f00112233445566778899aabbccddeeff00112233445566778899aabb";

pub struct Cluster {
    /// Nodes in the order they were started; a stopped node stays in its
    /// slot (see [`Cluster::stop`]).
    nodes: Vec<Server>,
    pub seaweed: Seaweed,
    pub pg: Postgres,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts PostgreSQL, SeaweedFS and `n` nodes (one after the other: the
    /// first creates the catalog and the administrator), and adds the S3
    /// repository [`REPO`] through the first.
    pub fn start(n: usize) -> Cluster {
        assert!(n >= 1, "a cluster has at least one node");
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = Postgres::start();
        let seaweed = Seaweed::start(&dir.path().join("seaweed"));
        let mut cluster = Cluster {
            nodes: Vec::new(),
            seaweed,
            pg,
            dir,
        };
        cluster.add_node();
        let mut add = vec!["repo".to_string(), "add".into(), REPO.into()];
        add.extend(cluster.seaweed.repo_args("archive"));
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        cluster.node(0).admin_ok(&add);
        for _ in 1..n {
            cluster.add_node();
        }
        cluster
    }

    /// The environment every node runs with: catalog, S3 credentials, key.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = self
            .seaweed
            .env()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        env.push(("SATCHEL_CATALOG", self.pg.url()));
        env.push(("SATCHEL_KEY", KEY.to_string()));
        // The index says where it starts from the membership log at info.
        env.push(("SATCHEL_LOG", "warn,satchel_archive=info".to_string()));
        env
    }

    /// The data folder of node `i` (whether it runs or not).
    pub fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}")).join("data")
    }

    /// Starts one more node on an empty data folder; returns its number.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let data = self.data(i);
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.nodes.push(Server::start_in_with(&data, &env));
        i
    }

    pub fn node(&self, i: usize) -> &Server {
        &self.nodes[i]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Kills node `i` (its data folder stays).
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Kills node `i` and starts it again on the same data folder and port
    /// (laptops and clients configured with its URL find it there). Its log
    /// is a new file: [`Server::log`].
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        let port = self.nodes[i].port;
        let data = self.data(i);
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let log = data.with_extension(format!("{port}.restart{attempt}.log"));
            let mut server = Server::spawn(&data, port, &log, &env);
            match server.wait_ready() {
                Ok(()) => {
                    self.nodes[i] = server;
                    return;
                }
                // The killed process's port may linger for a moment.
                Err(log) if log.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("node {i} did not start again on port {port}; log:\n{log}"),
            }
        }
    }

    /// Adds a mailbox (through node 0) whose mail goes to the S3 repository.
    pub fn add_mailbox(&self, address: &str) {
        self.node(0)
            .admin_ok(&["mailbox", "add", address, "--repo", REPO]);
    }

    /// The catalog itself, as an administrator's tool would open it (for
    /// what no command does yet, such as taking a message out of a mailbox).
    pub fn catalog(&self) -> satchel_archive::catalog::Catalog {
        satchel_archive::catalog::Catalog::connect(&self.pg.url()).expect("the cluster's catalog")
    }

    /// Polls `check` on node `i` until it returns true or `within` passes;
    /// panics with `what` and node `i`'s log then. For what a node learns
    /// from the catalog in the background (no timing assertion: the
    /// deadline only bounds a test that would otherwise hang).
    pub fn wait_for(
        &self,
        i: usize,
        within: Duration,
        what: &str,
        mut check: impl FnMut(&Server) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            if check(self.node(i)) {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.node(i).log).unwrap_or_default();
                panic!("node {i}: {what} not seen within {within:?}; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Writes `n` distinct small messages tagged `tag` (a word found in each
/// subject and body) as .eml files into `dir`; returns each file with its id.
pub fn write_messages(dir: &Path, tag: &str, n: usize) -> Vec<(PathBuf, String)> {
    std::fs::create_dir_all(dir).expect("message folder");
    (0..n)
        .map(|i| {
            let raw = format!(
                "From: sender{i}@example.org\r\nTo: someone@example.com\r\n\
                 Subject: {tag} number {i}\r\nMessage-ID: <{tag}-{i}@example.org>\r\n\
                 Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBody of {tag} message {i}.\r\n"
            );
            let file = dir.join(format!("{tag}-{i}.eml"));
            std::fs::write(&file, &raw).expect("write message");
            (file, super::sha256_hex(raw.as_bytes()))
        })
        .collect()
}

/// `satchel get MAILBOX ID` through `server`, insisting it succeeds.
pub fn get(server: &Server, mailbox: &str, id: &str) -> Vec<u8> {
    let out = run(server.admin().args(["get", mailbox, id]));
    assert!(
        out.status.success(),
        "get {id} through {}: {}",
        server.url,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
