//! `satchel laptop ...`: the laptop client (crate `satchel-laptop`).
//!
//! Each user of a laptop has their own home folder (--home, env
//! SATCHEL_HOME, default `$XDG_DATA_HOME/satchel` or
//! `~/.local/share/satchel`), readable by that user only.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use satchel_laptop::agent::AgentOptions;
use satchel_laptop::{Home, MailboxSync, MessageLink, Progress, Source};

use crate::output;

#[derive(Args)]
pub struct LaptopArgs {
    /// The home folder of this user's laptop client (configuration, token,
    /// local copies, search index). One per user.
    #[arg(long, env = "SATCHEL_HOME", global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    cmd: LaptopCmd,
}

#[derive(Subcommand)]
enum LaptopCmd {
    /// Configure this home: check the credentials, store the service URL and
    /// an API token (never the password), readable by you only.
    Setup {
        /// The archive service.
        #[arg(long, env = "SATCHEL_SERVER")]
        server: String,
        /// Your user name on the service.
        #[arg(long, env = "SATCHEL_USER")]
        user: String,
        /// Read the password from the first line of standard input
        /// (else from SATCHEL_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
        /// A private certificate authority's certificate (PEM) to trust for an
        /// https:// service; the home keeps a copy for every later sync.
        #[arg(long, env = "SATCHEL_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// Replace a configuration for another user or service (drops its copies).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// One pass: copy or update every mailbox you may copy; remove those no
    /// longer offered; repair damaged copies; update the local search index.
    Sync {
        /// Summary per mailbox as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The agent: check regularly for the service, sync when reachable, and
    /// serve message links (http://ADDR/m/ADDRESS/ID) and a status page.
    Run {
        #[arg(long, env = "SATCHEL_LAPTOP_LISTEN", default_value = "127.0.0.1:8481")]
        listen: String,
        /// Seconds between checks while online (random jitter of ±25% is added).
        #[arg(long, default_value_t = 300)]
        interval: u64,
        /// First retry delay in seconds while offline; doubles up to --interval.
        #[arg(long, default_value_t = 15)]
        min_retry: u64,
    },
    /// Print a message's original bytes: from the service when online, else
    /// from the local copy. LINK is http://127.0.0.1:8481/m/ADDRESS/ID or
    /// satchel://ADDRESS/ID.
    Open { link: String },
    /// Search: through the service when online, else the local index.
    Search {
        query: String,
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Configuration, online or not, last sync and the local copies.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every local copy; exit status 1 if something is damaged or
    /// missing (`satchel laptop sync` re-fetches exactly that).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Register `satchel://` links with the desktop: write
    /// ~/.local/share/applications/satchel-link.desktop and run
    /// `xdg-mime default satchel-link.desktop x-scheme-handler/satchel`.
    InstallHandler,
}

impl LaptopArgs {
    /// `satchel laptop run`: the agent, a long-running server.
    pub fn is_agent(&self) -> bool {
        matches!(self.cmd, LaptopCmd::Run { .. })
    }
}

pub async fn run(a: LaptopArgs) -> Result<ExitCode> {
    let home = Home::resolve(a.home)?;
    match a.cmd {
        LaptopCmd::Setup {
            server,
            user,
            password_stdin,
            ca_file,
            force,
            json,
        } => {
            let ca = super::private_ca(&server, ca_file.as_deref())?;
            let password = if password_stdin {
                super::password_from_stdin()?
            } else {
                std::env::var("SATCHEL_PASSWORD")
                    .context("give --password-stdin (or set SATCHEL_PASSWORD)")?
            };
            let config = satchel_laptop::setup(&home, &server, &user, &password, ca, force).await?;
            if json {
                output::json(&serde_json::json!({
                    "home": home.dir(),
                    "server": config.server,
                    "user": config.user,
                }))?;
            } else {
                println!(
                    "{} is set up for {} at {}; run `satchel laptop sync`",
                    home.dir().display(),
                    config.user,
                    config.server
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LaptopCmd::Sync { json } => sync(&home, json).await,
        LaptopCmd::Run {
            listen,
            interval,
            min_retry,
        } => {
            let options = AgentOptions {
                listen,
                interval: Duration::from_secs(interval.max(1)),
                min_retry: Duration::from_secs(min_retry.max(1)),
            };
            satchel_laptop::agent::run(home, options).await?;
            Ok(ExitCode::SUCCESS)
        }
        LaptopCmd::Open { link } => {
            let link: MessageLink = link.parse()?;
            let opened = satchel_laptop::open_message(&home, &link).await?;
            note_local_copy(opened.service_error.as_ref());
            let mut out = std::io::stdout().lock();
            out.write_all(&opened.value)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        LaptopCmd::Search {
            query,
            mailbox,
            limit,
            json,
        } => {
            let found = satchel_laptop::search(&home, &query, mailbox.as_deref(), limit).await?;
            note_local_copy(found.service_error.as_ref());
            let (results, source) = (found.value, found.source);
            if json {
                let mut v = serde_json::to_value(&results)?;
                v["source"] = serde_json::Value::from(match source {
                    Source::Service => "service",
                    Source::LocalCopy => "local",
                });
                output::json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = std::io::stdout().lock();
            output::hits(&mut out, &results.hits)?;
            writeln!(
                out,
                "{} result(s) {}",
                results.hits.len(),
                match source {
                    Source::Service => "from the service",
                    Source::LocalCopy => "from the local index (offline)",
                }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        LaptopCmd::Status { json } => status(&home, json).await,
        LaptopCmd::Verify { json } => {
            let report = satchel_laptop::verify_all(&home)?;
            if json {
                output::json(&report)?;
            } else {
                for m in &report.mailboxes {
                    if m.ok {
                        println!("{}: ok ({} segments)", m.mailbox, m.checked);
                    } else if let Some(e) = &m.error {
                        println!("{}: unusable: {e}", m.mailbox);
                    } else {
                        println!(
                            "{}: {} damaged, {} missing of {} segments",
                            m.mailbox,
                            m.damaged.len(),
                            m.missing.len(),
                            m.checked
                        );
                        for s in &m.damaged {
                            println!("    damaged {s}");
                        }
                        for s in &m.missing {
                            println!("    missing {s}");
                        }
                    }
                }
                if !report.ok {
                    println!("run `satchel laptop sync` while online to re-fetch them");
                }
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        LaptopCmd::InstallHandler => install_handler(),
    }
}

/// Why an answer came from the local copy: offline is the normal case (a
/// debug note), a revoked token needs the user to act (always said).
fn note_local_copy(why: Option<&satchel_laptop::Error>) {
    match why {
        Some(e @ satchel_laptop::Error::TokenRevoked { .. }) => eprintln!("satchel: {e}"),
        Some(e) => tracing::info!("{e}: answered from the local copy"),
        None => {}
    }
}

async fn sync(home: &Home, json: bool) -> Result<ExitCode> {
    let bars = Bars::new(!json && std::io::stderr().is_terminal());
    let report = satchel_laptop::sync_all(home, &bars).await?;
    if json {
        output::json(&report)?;
    } else {
        for m in &report.mailboxes {
            println!(
                "{}: {}, generation {}, {} messages, {} segments ({}); downloaded {}{}",
                m.mailbox,
                m.change,
                m.generation,
                m.messages,
                m.segments,
                output::bytes(m.bytes),
                output::bytes(m.bytes_downloaded),
                if m.segments_repaired > 0 {
                    format!(", {} damaged segment(s) re-fetched", m.segments_repaired)
                } else {
                    String::new()
                }
            );
        }
        for r in &report.removed {
            println!("{r}: no longer offered; local copy removed");
        }
        for e in &report.errors {
            eprintln!("{}: sync failed: {}", e.mailbox, e.error);
        }
        println!(
            "{} mailbox(es), {} downloaded in {:.1} s",
            report.mailboxes.len(),
            output::bytes(report.bytes_downloaded),
            report.seconds
        );
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Progress bars on a terminal (nothing otherwise).
struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn new(enabled: bool) -> Bars {
        Bars {
            enabled,
            bar: Mutex::new(None),
        }
    }
}

impl Progress for Bars {
    fn start(&self, mailbox: &str, to_download: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::new(to_download);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(mailbox.to_string());
        *self.bar.lock().expect("bar") = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = self.bar.lock().expect("bar").as_ref() {
            b.inc(bytes);
        }
    }
    fn finish(&self, _result: &MailboxSync) {
        if let Some(b) = self.bar.lock().expect("bar").take() {
            b.finish_and_clear();
        }
    }
}

async fn status(home: &Home, json: bool) -> Result<ExitCode> {
    let mut s = satchel_laptop::local_status(home)?;
    // A quick check: does the service answer now?
    let config = home.config()?;
    let service = satchel_laptop::Service::new(&config)?;
    let online = match service.whoami().await {
        Ok(_) => true,
        Err(e) if e.is_offline() => false,
        Err(e) => {
            s.last_error = Some(e.to_string());
            true
        }
    };
    s.online = Some(online);
    if json {
        output::json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("home:      {}", s.home);
    println!("user:      {} at {}", s.user, s.server);
    println!("service:   {}", if online { "online" } else { "offline" });
    println!("last sync: {}", s.last_sync.as_deref().unwrap_or("never"));
    if let Some(e) = &s.last_error {
        println!("last error: {e}");
    }
    for m in &s.mailboxes {
        if m.complete {
            println!(
                "{}: generation {}, {} messages, {} segments, {}",
                m.mailbox,
                m.generation,
                m.messages,
                m.segments,
                output::bytes(m.bytes)
            );
        } else {
            println!("{}: first sync not completed", m.mailbox);
        }
    }
    Ok(ExitCode::SUCCESS)
}

const DESKTOP_ENTRY: &str = include_str!("../../../satchel-laptop/assets/satchel-link.desktop");

fn install_handler() -> Result<ExitCode> {
    let apps = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("applications"),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".local/share/applications"),
            None => bail!("neither XDG_DATA_HOME nor HOME is set"),
        },
    };
    std::fs::create_dir_all(&apps).with_context(|| format!("creating {}", apps.display()))?;
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "satchel".into());
    let entry = DESKTOP_ENTRY.replace("Exec=satchel ", &format!("Exec={exe} "));
    let path = apps.join("satchel-link.desktop");
    std::fs::write(&path, entry).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    match std::process::Command::new("xdg-mime")
        .args([
            "default",
            "satchel-link.desktop",
            "x-scheme-handler/satchel",
        ])
        .status()
    {
        Ok(s) if s.success() => println!("satchel:// links now open with `satchel laptop open`"),
        Ok(s) => eprintln!("xdg-mime failed ({s}); register the entry with your desktop by hand"),
        Err(_) => eprintln!(
            "xdg-mime not found; run `xdg-mime default satchel-link.desktop x-scheme-handler/satchel` once it is installed"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
