//! A thousand laptops connecting at once (issue 12 point 5). The kernel
//! completes a connection and queues it until the service accepts it, but
//! only up to the listening socket's backlog; past it, it drops the new
//! connection's SYN without a word, the laptop's 2 s connect timeout runs
//! out, and the laptop believes the service offline while the service never
//! saw it: silent throttling. A busy service (here: stopped, so that it
//! accepts nothing) must queue a storm's connections and then serve them.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// More than the 128 of Rust's (and tokio's) default listen backlog, and
/// fewer than the 1,024 open files a test may have. The service asks for a
/// backlog of 4,096, which the kernel caps at `net.core.somaxconn` (4,096
/// by default since Linux 5.4).
const AT_ONCE: usize = 600;

/// Past its deadline a connection counts as dropped (the kernel resends a
/// dropped SYN after 1 s, and would never get it queued here).
const CONNECT_DEADLINE: Duration = Duration::from_secs(3);

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

#[test]
fn a_storm_of_connections_is_queued_while_the_service_is_busy_and_then_served() {
    let server = Server::start();
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port)
        .parse()
        .expect("address");
    signal("STOP", server.pid());
    let mut queued = Vec::new();
    let mut dropped = None;
    for _ in 0..AT_ONCE {
        match TcpStream::connect_timeout(&addr, CONNECT_DEADLINE) {
            Ok(stream) => queued.push(stream),
            Err(e) => {
                dropped = Some(e);
                break;
            }
        }
    }
    signal("CONT", server.pid());
    assert!(
        dropped.is_none(),
        "connection {} of {AT_ONCE} was not queued ({dropped:?}): the listen backlog is too \
         small (or net.core.somaxconn below {AT_ONCE})",
        queued.len() + 1
    );

    // Every queued connection is served once the service runs again.
    let last = queued.len() - 1;
    for i in [0, last] {
        let stream = &mut queued[i];
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        stream
            .write_all(b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
}
