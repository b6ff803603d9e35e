//! A tiny TCP proxy between the laptop client and the service: counts the
//! bytes in each direction, records the HTTP request heads, and can cut a
//! segment download after N bytes (to prove that the next sync resumes it).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Stats {
    /// Client to service bytes.
    pub up: AtomicU64,
    /// Service to client bytes.
    pub down: AtomicU64,
    /// Service to client bytes on segment requests (headers included).
    pub segment_down: AtomicU64,
    /// Request heads (request line and headers), in order.
    pub requests: Mutex<Vec<String>>,
    /// One-shot: cut the next segment response after this many bytes.
    pub cut_after: Mutex<Option<u64>>,
    pub cuts: AtomicU64,
}

pub struct Proxy {
    pub port: u16,
    pub url: String,
    pub stats: Arc<Stats>,
}

impl Stats {
    pub fn total(&self) -> u64 {
        self.up.load(Ordering::SeqCst) + self.down.load(Ordering::SeqCst)
    }
    pub fn reset(&self) {
        self.up.store(0, Ordering::SeqCst);
        self.down.store(0, Ordering::SeqCst);
        self.segment_down.store(0, Ordering::SeqCst);
        self.requests.lock().expect("lock").clear();
    }
    /// Request lines (`GET /path HTTP/1.1`) seen since the last reset.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.lines().next().unwrap_or_default().to_string())
            .collect()
    }
}

impl Proxy {
    /// Forwards 127.0.0.1:<new port> to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    // Service down: behave like it (connection closed at once).
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let stats = s.clone();
                std::thread::spawn(move || pipe(client, server, stats));
            }
        });
        Proxy {
            port,
            url: format!("http://127.0.0.1:{port}"),
            stats,
        }
    }
}

fn pipe(client: TcpStream, server: TcpStream, stats: Arc<Stats>) {
    let segment = Arc::new(AtomicBool::new(false));
    let (mut c_read, mut c_write) = (client.try_clone().expect("clone"), client);
    let (mut s_read, mut s_write) = (server.try_clone().expect("clone"), server);
    let up_stats = stats.clone();
    let up_segment = segment.clone();
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        let mut head = Vec::new();
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            up_stats.up.fetch_add(n as u64, Ordering::SeqCst);
            head.extend_from_slice(&buf[..n]);
            while let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&head[..pos]).into_owned();
                up_segment.store(text.contains("/segments/"), Ordering::SeqCst);
                up_stats.requests.lock().expect("lock").push(text);
                head.drain(..pos + 4);
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16384];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut n = n;
        let mut cut = false;
        if segment.load(Ordering::SeqCst) {
            let mut c = stats.cut_after.lock().expect("lock");
            if let Some(left) = *c {
                if (n as u64) >= left {
                    n = left as usize;
                    cut = true;
                    *c = None;
                } else {
                    *c = Some(left - n as u64);
                }
            }
            stats.segment_down.fetch_add(n as u64, Ordering::SeqCst);
        }
        stats.down.fetch_add(n as u64, Ordering::SeqCst);
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
        if cut {
            stats.cuts.fetch_add(1, Ordering::SeqCst);
            let _ = c_write.shutdown(Shutdown::Both);
            let _ = s_read.shutdown(Shutdown::Both);
            break;
        }
    }
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
}
