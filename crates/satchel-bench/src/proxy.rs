//! A TCP proxy that counts the bytes each way, to measure what a client
//! really costs on the wire (HTTP heads included), without touching the
//! client or the service.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes through the proxy since it started or was last reset.
#[derive(Debug, Default)]
pub struct Counts {
    /// Client to service.
    pub up: AtomicU64,
    /// Service to client.
    pub down: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
}

impl Counts {
    /// (up, down, connections), and zero again.
    pub fn take(&self) -> (u64, u64, u64) {
        (
            self.up.swap(0, Ordering::SeqCst),
            self.down.swap(0, Ordering::SeqCst),
            self.connections.swap(0, Ordering::SeqCst),
        )
    }
}

/// A running proxy: every connection to `addr` is piped to the upstream
/// address, one thread per direction, until either side closes.
pub struct Proxy {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any free port) and forwards to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::spawn(move || accept(listener, upstream, c));
        Ok(Proxy { addr, counts })
    }
}

fn accept(listener: TcpListener, upstream: SocketAddr, counts: Arc<Counts>) {
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        counts.connections.fetch_add(1, Ordering::SeqCst);
        let Ok(server) = TcpStream::connect(upstream) else {
            // Service down: behave like it (the connection closes at once).
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let counts = counts.clone();
        std::thread::spawn(move || {
            if let Err(e) = join(client, server, &counts) {
                eprintln!("proxy: {e}");
            }
        });
    }
}

fn join(client: TcpStream, server: TcpStream, counts: &Arc<Counts>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (c_read, s_write) = (client.try_clone()?, server.try_clone()?);
    let up_counts = counts.clone();
    let up = std::thread::spawn(move || pipe(c_read, s_write, &up_counts.up));
    pipe(server, client, &counts.down);
    let _ = up.join();
    Ok(())
}

/// Copies `from` to `to`, counting, until `from` ends or `to` fails; then
/// half-closes `to` so the other side sees the end.
fn pipe(mut from: TcpStream, mut to: TcpStream, count: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        count.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_directions() {
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let upstream = echo.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().expect("accept");
            let mut got = [0u8; 5];
            s.read_exact(&mut got).expect("read");
            s.write_all(b"hello, world").expect("write");
        });
        let proxy = Proxy::start("127.0.0.1:0".parse().expect("addr"), upstream).expect("proxy");
        let mut c = TcpStream::connect(proxy.addr).expect("connect");
        c.write_all(b"hello").expect("write");
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).expect("read");
        assert_eq!(answer, b"hello, world");
        assert_eq!(proxy.counts.take(), (5, 12, 1));
        assert_eq!(proxy.counts.take(), (0, 0, 0));
    }
}
