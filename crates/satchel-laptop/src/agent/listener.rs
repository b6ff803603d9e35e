//! Who is connecting: the agent's listener looks up, at accept time, which
//! local user owns the client end of each loopback connection (Linux,
//! /proc/net/tcp), for the router's same-user guard.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

/// The client of a connection: the uid owning its socket (Linux), looked
/// up once when the connection is accepted.
#[derive(Clone, Debug)]
pub(super) struct Peer {
    pub(super) uid: Option<u32>,
}

/// The agent's listener: TCP with TCP_NODELAY (small pages, no Nagle
/// delay) that identifies each client's owner at accept time.
pub(super) struct AgentListener(pub(super) tokio::net::TcpListener);

impl axum::serve::Listener for AgentListener {
    type Io = tokio::net::TcpStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        stream,
                        Peer {
                            uid: peer_uid(addr),
                        },
                    );
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, retry.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr().map(|_| Peer { uid: own_uid() })
    }
}

impl Connected<IncomingStream<'_, AgentListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, AgentListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(super) fn own_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    None
}

/// The uid owning the client end of a loopback connection, from
/// /proc/net/tcp{,6} (None where that is not available).
fn peer_uid(peer: SocketAddr) -> Option<u32> {
    let mut wanted = Vec::new();
    match peer {
        SocketAddr::V4(a) => {
            wanted.push(format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(a.ip().octets()),
                a.port()
            ));
            let mapped = a.ip().to_ipv6_mapped();
            wanted.push(v6_hex(&mapped.octets(), a.port()));
        }
        SocketAddr::V6(a) => {
            wanted.push(v6_hex(&a.ip().octets(), a.port()));
            if let Some(v4) = a.ip().to_ipv4_mapped() {
                wanted.push(format!(
                    "{:08X}:{:04X}",
                    u32::from_ne_bytes(v4.octets()),
                    a.port()
                ));
            }
        }
    }
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 7 && wanted.iter().any(|w| w == cols[1]) {
                return cols[7].parse().ok();
            }
        }
    }
    None
}

fn v6_hex(octets: &[u8; 16], port: u16) -> String {
    let mut s = String::with_capacity(37);
    for chunk in octets.chunks(4) {
        let w = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        s.push_str(&format!("{w:08X}"));
    }
    format!("{s}:{port:04X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_loopback_connection_uid() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(peer_uid(peer), own_uid());
        }
    }
}
