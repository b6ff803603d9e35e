//! Resident memory of a process, from `/proc/PID/status` (Linux).

use std::io;

/// `VmRSS` (resident now) and `VmHWM` (the peak the kernel recorded) of a
/// process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Reads the memory of process `pid`; an error once the process is gone.
pub fn read(pid: u32) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS/VmHWM (a kernel thread or a zombie)"),
        )
    })
}

fn parse(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let m = read(std::process::id()).expect("own status");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib, "{m:?}");
    }

    #[test]
    fn a_status_without_memory_lines_is_none() {
        assert_eq!(parse("Name:\tkthreadd\nState:\tS\n"), None);
        assert_eq!(
            parse("VmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"),
            Some(Memory {
                rss_kib: 1024,
                hwm_kib: 2048
            })
        );
    }
}
