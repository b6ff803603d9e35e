//! The service as the kernel sees it, sampled while a storm runs: its open
//! TCP connections (server side), CPU time, threads, file descriptors, RSS
//! and bytes written. Everything is read from /proc, so the service needs no
//! instrumentation and the figures are the service process's own.

use std::collections::HashSet;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Clock ticks per second of /proc/PID/stat: USER_HZ, which Linux fixes at
/// 100 for user space on every architecture it exports it to.
const TICKS_PER_SECOND: f64 = 100.0;

/// How often the sampler looks.
const EVERY: Duration = Duration::from_millis(20);

/// One reading of one service process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessSample {
    /// User + system CPU, seconds.
    pub cpu_seconds: f64,
    pub threads: u64,
    pub rss_bytes: u64,
    /// Bytes the process passed to write(2)/writev(2): its sockets' answers
    /// (plus its log and database writes, small next to them during a storm).
    pub written_bytes: u64,
    pub open_fds: u64,
}

/// Reads `/proc/PID/{stat,io,fd}`; `None` once the process is gone.
pub fn sample_process(pid: u32) -> Option<ProcessSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count
    // from after its closing parenthesis (field 3, the state, is index 0).
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    let ticks = num(11)? + num(12)?;
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let written = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(ProcessSample {
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
        threads: num(17)?,
        rss_bytes: num(21)? * 4096,
        written_bytes: written,
        open_fds: fds,
    })
}

/// Established TCP connections whose local port is one of `ports`: the
/// service's side of every connection, accepted or still in its accept
/// queue, idle keep-alive ones included.
pub fn server_connections(ports: &HashSet<u16>) -> u64 {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| established_on(line, ports))
                .count() as u64
        })
        .sum()
}

/// One line of /proc/net/tcp: `sl local_address rem_address st ...`, the
/// addresses as `HEXIP:HEXPORT`, state 01 = ESTABLISHED.
fn established_on(line: &str, ports: &HashSet<u16>) -> bool {
    let mut f = line.split_whitespace();
    let (Some(_), Some(local), Some(_), Some(state)) = (f.next(), f.next(), f.next(), f.next())
    else {
        return false;
    };
    let port = local
        .rsplit(':')
        .next()
        .and_then(|p| u16::from_str_radix(p, 16).ok());
    state == "01" && port.is_some_and(|p| ports.contains(&p))
}

/// What the sampler saw over one storm.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    pub peak_connections: u64,
    /// Per service process (in the order given): peaks over the storm.
    pub peak_threads: Vec<u64>,
    pub peak_fds: Vec<u64>,
    pub peak_rss: Vec<u64>,
    pub samples: u64,
}

/// Samples in a thread of its own until [`Watcher::stop`].
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Watched>,
}

impl Watcher {
    pub fn start(pids: Vec<u32>, ports: HashSet<u16>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let n = pids.len();
            let mut w = Watched {
                peak_threads: vec![0; n],
                peak_fds: vec![0; n],
                peak_rss: vec![0; n],
                ..Watched::default()
            };
            while !flag.load(Ordering::Relaxed) {
                w.peak_connections = w.peak_connections.max(server_connections(&ports));
                for (i, pid) in pids.iter().enumerate() {
                    if let Some(s) = sample_process(*pid) {
                        w.peak_threads[i] = w.peak_threads[i].max(s.threads);
                        w.peak_fds[i] = w.peak_fds[i].max(s.open_fds);
                        w.peak_rss[i] = w.peak_rss[i].max(s.rss_bytes);
                    }
                }
                w.samples += 1;
                std::thread::sleep(EVERY);
            }
            w
        });
        Watcher { stop, handle }
    }

    pub fn stop(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_and_local_port_of_a_proc_net_tcp_line() {
        let ports: HashSet<u16> = [8480].into_iter().collect();
        let server = "  3: 0100007F:2120 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 1 1";
        let client = "  4: 0100007F:A1B2 0100007F:2120 01 00000000:00000000 00:00000000 00000000  1000        0 1 1";
        let listening = "  0: 0100007F:2120 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1";
        assert!(established_on(server, &ports));
        assert!(!established_on(client, &ports));
        assert!(!established_on(listening, &ports));
        assert!(!established_on("garbage", &ports));
    }

    #[test]
    fn samples_this_process() {
        let s = sample_process(std::process::id()).expect("own /proc entry");
        assert!(s.threads >= 1 && s.rss_bytes > 0 && s.open_fds > 0);
    }
}
