//! What the simulated laptops saw: response times per request kind, errors
//! by kind, body bytes, requests in flight.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The requests a laptop makes, in the order it makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `GET /api/v1/whoami`: the agent's reachability check.
    Whoami,
    /// `GET /api/v1/offline/repositories`.
    Repositories,
    /// `GET .../manifest` answered 304.
    ManifestNotModified,
    /// `GET .../manifest` answered 200 (a new generation).
    ManifestChanged,
    /// `GET .../segments/NAME`, to the last byte of the body.
    Segment,
    /// One whole refresh: check + sync of every mailbox.
    Refresh,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Whoami => "whoami",
            Kind::Repositories => "repositories",
            Kind::ManifestNotModified => "manifest (304)",
            Kind::ManifestChanged => "manifest (200)",
            Kind::Segment => "segment (to last byte)",
            Kind::Refresh => "whole refresh",
        }
    }
}

/// Shared by every simulated laptop of one storm.
#[derive(Default)]
pub struct Recorder {
    times: Mutex<BTreeMap<Kind, Vec<Duration>>>,
    errors: Mutex<BTreeMap<String, u64>>,
    body_bytes: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// Counts one request in flight until dropped.
pub struct InFlight<'a>(&'a Recorder);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Recorder {
    pub fn begin(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    pub fn time(&self, kind: Kind, took: Duration) {
        if let Ok(mut t) = self.times.lock() {
            t.entry(kind).or_default().push(took);
        }
    }

    pub fn error(&self, kind: String) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(kind).or_default() += 1;
        }
    }

    pub fn bytes(&self, n: u64) {
        self.body_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Everything recorded, for the report.
    pub fn summary(&self) -> Summary {
        let times = self.times.lock().map(|t| t.clone()).unwrap_or_default();
        let kinds = times
            .into_iter()
            .map(|(kind, mut v)| {
                v.sort();
                KindSummary {
                    kind,
                    count: v.len(),
                    p50: percentile(&v, 0.50),
                    p99: percentile(&v, 0.99),
                    max: v.last().copied().unwrap_or_default(),
                }
            })
            .collect();
        Summary {
            kinds,
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            body_bytes: self.body_bytes.load(Ordering::SeqCst),
            peak_in_flight: self.peak_in_flight.load(Ordering::SeqCst),
        }
    }
}

/// Nearest-rank percentile of sorted durations (zero for none).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub struct KindSummary {
    pub kind: Kind,
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub struct Summary {
    pub kinds: Vec<KindSummary>,
    pub errors: BTreeMap<String, u64>,
    pub body_bytes: u64,
    pub peak_in_flight: u64,
}

impl Summary {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
