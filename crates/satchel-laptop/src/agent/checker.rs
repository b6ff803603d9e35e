//! The agent's loop: check whether the service is reachable, sync when it
//! is, sleep with jitter (online) or a doubling backoff (offline); a fetch
//! that finds the service gone wakes it early.

use std::sync::Arc;
use std::time::Duration;

use super::{Agent, AgentOptions};
use crate::error::Error;
use crate::fsutil;
use crate::replica::NoProgress;

/// The delay before the next check: `interval` while online; while offline
/// `min_retry * 2^(failures-1)`, capped at `interval`; both with jitter
/// (uniform in [0.75, 1.25)).
pub fn next_delay(options: &AgentOptions, failures: u32) -> Duration {
    let base = if failures == 0 {
        options.interval
    } else {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        options
            .min_retry
            .saturating_mul(factor)
            .min(options.interval)
    };
    base.mul_f64(rand::random_range(0.75..1.25))
}

/// The periodic loop: check, sync when reachable, sleep with jitter/backoff.
pub(super) async fn run(agent: Arc<Agent>, options: AgentOptions) {
    let mut failures: u32 = 0;
    loop {
        let now = fsutil::now_unix();
        match agent.service.whoami().await {
            Ok(_) => {
                agent.set_online(true);
                failures = 0;
                match crate::sync::sync_all(&agent.home, &NoProgress).await {
                    Ok(r) => {
                        tracing::info!(
                            "sync: {} mailbox(es), {} bytes downloaded",
                            r.mailboxes.len(),
                            r.bytes_downloaded
                        );
                        for e in &r.errors {
                            tracing::warn!("sync {}: {}", e.mailbox, e.error);
                        }
                    }
                    Err(e) if e.is_offline() => {
                        agent.set_online(false);
                        failures = 1;
                    }
                    Err(e) => tracing::warn!("sync failed: {e}"),
                }
            }
            Err(e) => {
                let offline = e.is_offline();
                agent.set_online(!offline);
                if offline {
                    failures = failures.saturating_add(1);
                }
                if matches!(e, Error::TokenRevoked { .. }) {
                    tracing::warn!("check: {e}");
                } else {
                    tracing::info!("check: {e}");
                }
                let msg = e.to_string();
                let _ = agent.home.update_state(|s| {
                    s.last_check = Some(now);
                    s.online = Some(!offline);
                    s.last_error = Some(msg);
                });
            }
        }
        let delay = next_delay(&options, failures);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = agent.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_interval_with_jitter() {
        let o = AgentOptions {
            interval: Duration::from_secs(300),
            min_retry: Duration::from_secs(10),
            ..AgentOptions::default()
        };
        for _ in 0..100 {
            let d = next_delay(&o, 0).as_secs_f64();
            assert!((225.0..375.0).contains(&d), "{d}");
            let d = next_delay(&o, 1).as_secs_f64();
            assert!((7.5..12.5).contains(&d), "{d}");
            let d = next_delay(&o, 3).as_secs_f64();
            assert!((30.0..50.0).contains(&d), "{d}");
            let d = next_delay(&o, 40).as_secs_f64();
            assert!((225.0..375.0).contains(&d), "{d}");
        }
    }
}
