//! The service as a process: its memory as the kernel counts it, and the
//! files it leaves in its data folder.

use super::Server;
use std::path::Path;

impl Server {
    /// The process id of `satchel serve`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the service is running").id()
    }

    /// The service's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_kb("VmHWM") * 1024
    }

    /// The service's resident memory now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        self.status_kb("VmRSS") * 1024
    }

    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status of the service");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status:\n{status}"))
    }

    /// The files in a folder of the data folder (none if it does not exist).
    pub fn files_in(&self, folder: &str) -> Vec<String> {
        let dir: &Path = &self.data.join(folder);
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}
