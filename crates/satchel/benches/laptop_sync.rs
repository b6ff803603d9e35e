//! Laptop sync benchmark (issue 5), in one run on the SpamAssassin corpus:
//!
//! * initial sync of the whole corpus Maildir: time and bytes on the wire
//!   (counted by a TCP proxy between laptop and service: requests and
//!   responses, headers included), beside `rsync -a --stats` of the same
//!   Maildir and the corpus as one `zstd -3` stream;
//! * incremental sync after 100 new messages, beside those 100 as one
//!   `zstd -3` stream + 4 KiB;
//! * no-change sync: bytes on the wire;
//! * offline open latency over 1,000 random messages: through the agent
//!   (`GET /m/ADDRESS/ID.eml` with the service killed), in-process
//!   (`ReplicaIndex::read`), and `satchel laptop open` as a process.
//!
//! Run: `cargo bench -p satchel --bench laptop_sync` (release build).

#[path = "../tests/common/mod.rs"]
mod common;

use common::proxy::Proxy;
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MB: &str = "bench@example.com";

fn laptop(home: &Path) -> Command {
    let mut cmd = satchel();
    cmd.env("SATCHEL_HOME", home).arg("laptop");
    cmd
}

fn mb(n: u64) -> String {
    format!("{:.2} MB", n as f64 / 1e6)
}

fn zstd3(parts: &[Vec<u8>]) -> u64 {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    for p in parts {
        enc.write_all(p).expect("zstd write");
    }
    enc.finish().expect("zstd finish").len() as u64
}

fn rsync_bytes(src: &Path, dst: &Path) -> Option<u64> {
    let out = Command::new("rsync")
        .args(["-a", "--stats"])
        .arg(format!("{}/", src.display()))
        .arg(dst)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("Total bytes sent:"))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().replace(',', ""))
        .and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// xorshift: reproducible choices without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing to filter.
    let files = corpus_files(0, usize::MAX);
    let raws: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect();
    let corpus_bytes: u64 = raws.iter().map(|r| r.len() as u64).sum();
    println!(
        "corpus: {} messages, {} ({} bytes)",
        raws.len(),
        mb(corpus_bytes),
        corpus_bytes
    );
    let zstd_all = zstd3(&raws);
    let tmp = tempfile::tempdir().expect("tempdir");
    let rsync = rsync_bytes(&corpus().join("maildir"), &tmp.path().join("rsync-copy"));

    // The service, holding the corpus, with an offline repository.
    let mut server = Server::start();
    server.admin_ok(&["mailbox", "add", MB]);
    let t = Instant::now();
    server.admin_ok(&[
        "import",
        MB,
        corpus().join("maildir").to_str().expect("utf8"),
    ]);
    println!("service: import {:.1} s", t.elapsed().as_secs_f64());
    server.add_user("bench", "bench-password");
    server.admin_ok(&["mailbox", "grant", MB, "bench"]);
    server.admin_ok(&["offline", "enable", MB]);
    let t = Instant::now();
    server.admin_ok(&["offline", "sync-now"]);
    println!("service: offline update {:.1} s", t.elapsed().as_secs_f64());

    let proxy = Proxy::start(server.port);
    let home = tmp.path().join("home");
    run_with_stdin(
        laptop(&home).args([
            "setup",
            "--server",
            &proxy.url,
            "--user",
            "bench",
            "--password-stdin",
        ]),
        "bench-password",
    );

    // Initial sync.
    proxy.stats.reset();
    let t = Instant::now();
    let first = json(&ok(laptop(&home).args(["sync", "--json"])));
    let initial_time = t.elapsed();
    let initial_wire = proxy.stats.total();
    let index_secs = first["index"]["seconds"].as_f64().unwrap_or(0.0);
    let messages = first["mailboxes"][0]["messages"].as_u64().unwrap_or(0);

    // 100 new messages: corpus messages redelivered (a new Received line
    // makes them new messages with new ids).
    let new_dir = tmp.path().join("new");
    std::fs::create_dir_all(&new_dir).expect("mkdir");
    let mut new_raws = Vec::new();
    let mut new_files = Vec::new();
    let mut rng = Rng(0x5eed);
    for i in 0..100 {
        let src = &raws[rng.below(raws.len())];
        let mut raw = format!(
            "Received: from relay{i}.example.net by mx.example.com; Tue, 3 Sep 2002 10:{:02}:00 +0000\n",
            i % 60
        )
        .into_bytes();
        raw.extend_from_slice(src);
        let p = new_dir.join(format!("new-{i}.eml"));
        std::fs::write(&p, &raw).expect("write");
        new_files.push(p);
        new_raws.push(raw);
    }
    let zstd_new = zstd3(&new_raws);
    import_files(&server, MB, &new_files);
    server.admin_ok(&["offline", "sync-now"]);
    proxy.stats.reset();
    let t = Instant::now();
    let incr = json(&ok(laptop(&home).args(["sync", "--json"])));
    let incr_time = t.elapsed();
    let incr_wire = proxy.stats.total();
    let incr_segment = incr["mailboxes"][0]["segment_bytes"].as_u64().unwrap_or(0);

    // No change.
    proxy.stats.reset();
    let t = Instant::now();
    ok(laptop(&home).args(["sync", "--json"]));
    let none_time = t.elapsed();
    let none_wire = proxy.stats.total();
    let none_up = proxy.stats.up.load(std::sync::atomic::Ordering::SeqCst);
    let none_requests = proxy.stats.request_lines();

    // Offline: the service is killed.
    server.kill();
    let ids: Vec<String> = {
        let mut rng = Rng(0xfeed);
        (0..1000)
            .map(|_| sha256_hex(&raws[rng.below(raws.len())]))
            .collect()
    };

    // (a) in-process: the local copy opened once, 1,000 reads.
    let replica = home.join("replicas").join(MB);
    let reader = satchel_offline::ReplicaIndex::open(&replica).expect("open local copy");
    let mut lib = Vec::with_capacity(ids.len());
    for id in &ids {
        let id = satchel_offline::MessageId::from_hex(id).expect("id");
        let t = Instant::now();
        let raw = reader.read(&id).expect("read");
        lib.push(t.elapsed());
        assert!(!raw.is_empty());
    }
    lib.sort();

    // (b) through the agent, as a browser following a link.
    let port = free_port();
    let mut agent = laptop(&home)
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("agent");
    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/status.json")).send().is_err() {
        assert!(Instant::now() < deadline, "agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the agent find out the service is gone (first check).
    std::thread::sleep(Duration::from_millis(500));
    let mut http = Vec::with_capacity(ids.len());
    for id in &ids {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/m/{MB}/{id}.eml"))
            .send()
            .expect("get");
        assert_eq!(r.status(), 200);
        let body = r.bytes().expect("body");
        http.push(t.elapsed());
        assert_eq!(&sha256_hex(&body), id);
    }
    http.sort();
    let _ = agent.kill();
    let _ = agent.wait();

    // (c) `satchel laptop open` as a process (50 runs).
    let mut proc_ = Vec::new();
    for id in ids.iter().take(50) {
        let t = Instant::now();
        let out = run(laptop(&home).args(["open", &format!("satchel://{MB}/{id}")]));
        proc_.push(t.elapsed());
        assert!(out.status.success());
    }
    proc_.sort();

    let rsync_text = match rsync {
        Some(b) => format!("{} (measured now)", mb(b)),
        None => "32.9 MB (issue's measurement; rsync not installed here)".into(),
    };
    println!();
    println!("| measure | Satchel laptop | reference | goal |");
    println!("|---|---|---|---|");
    println!(
        "| initial sync, {} messages | {} on the wire, {:.1} s (of which local index {:.1} s) | rsync -a: {}; one zstd -3 stream: {} | <= 1.25 x zstd = {}: **{:.2} x** |",
        messages,
        mb(initial_wire),
        initial_time.as_secs_f64(),
        index_secs,
        rsync_text,
        mb(zstd_all),
        mb(zstd_all * 5 / 4),
        initial_wire as f64 / zstd_all as f64
    );
    println!(
        "| incremental sync, 100 new | {} bytes on the wire (segment {} bytes), {:.2} s | 100 as one zstd -3 stream: {} bytes | <= 1.25 x + 4 KiB = {} bytes: **{:.2} x zstd** |",
        incr_wire,
        incr_segment,
        incr_time.as_secs_f64(),
        zstd_new,
        zstd_new * 5 / 4 + 4096,
        incr_wire as f64 / zstd_new as f64
    );
    println!(
        "| no-change sync | {} bytes on the wire ({} up, {} down; {} requests), {:.2} s | rsync resends its file list | <= 1024 bytes |",
        none_wire,
        none_up,
        none_wire - none_up,
        none_requests.len(),
        none_time.as_secs_f64()
    );
    println!(
        "| offline open, agent HTTP `/m/ADDRESS/ID.eml`, 1,000 random | p50 {} / p99 {} / max {} | | p99 <= 5 ms |",
        ms(percentile(&http, 0.5)),
        ms(percentile(&http, 0.99)),
        ms(*http.last().expect("some"))
    );
    println!(
        "| offline open, in-process `ReplicaIndex::read`, same 1,000 | p50 {} / p99 {} / max {} | | |",
        ms(percentile(&lib, 0.5)),
        ms(percentile(&lib, 0.99)),
        ms(*lib.last().expect("some"))
    );
    println!(
        "| offline open, `satchel laptop open` process, 50 | p50 {} / p99 {} | | (process start + opening the copy) |",
        ms(percentile(&proc_, 0.5)),
        ms(percentile(&proc_, 0.99))
    );
    println!("no-change requests: {none_requests:?}");
}
