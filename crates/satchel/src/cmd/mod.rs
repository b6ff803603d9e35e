//! The command-line contract (DESIGN.md): every command, its flags and their
//! environment variables.

mod admin;
mod archive;
mod audit;
mod backup;
mod delete;
mod export;
mod hold;
mod import;
mod laptop;
mod offline;
mod read;
mod retention;
mod serve;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use satchel_api::{Auth, Client, PrivateCa};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `satchel --version`: the crate version and the commit it was built from
/// (build.rs; "unknown" when built outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SATCHEL_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "satchel",
    version = VERSION,
    about = "Mail archive service with offline laptop replicas"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How a command reaches the service.
#[derive(Args, Clone)]
pub struct Remote {
    /// The archive service.
    #[arg(long, env = "SATCHEL_SERVER", default_value = "http://127.0.0.1:8480")]
    pub server: String,
    /// User name (password from SATCHEL_PASSWORD).
    #[arg(long = "user", env = "SATCHEL_USER")]
    pub login: Option<String>,
    /// API token, instead of user and password.
    #[arg(long, env = "SATCHEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A private certificate authority's certificate (PEM) to trust for an
    /// https:// service, besides the system's.
    #[arg(long, env = "SATCHEL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

impl Remote {
    pub fn client(&self) -> Result<Client> {
        let auth = if let Some(token) = &self.token {
            Auth::Bearer(token.clone())
        } else if let Some(user) = &self.login {
            let password = std::env::var("SATCHEL_PASSWORD")
                .context("SATCHEL_PASSWORD is not set (the password of SATCHEL_USER)")?;
            Auth::Basic {
                user: user.clone(),
                password,
            }
        } else {
            Auth::None
        };
        let ca = private_ca(&self.server, self.ca_file.as_deref())?;
        Ok(Client::with_ca(&self.server, auth, ca.as_ref())?)
    }
}

/// The private CA of `--ca-file` for the service at `server`. Read only for
/// an `https://` service: a plain-HTTP command sets up no TLS at all, which
/// keeps its start-up cheap.
pub fn private_ca(server: &str, file: Option<&Path>) -> Result<Option<PrivateCa>> {
    match file {
        Some(f) if !satchel_api::client::is_plain_http(server) => {
            Ok(Some(PrivateCa::from_file(f)?))
        }
        _ => Ok(None),
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the archive service.
    Serve(serve::ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(admin::UserCmd),
    /// List and revoke API tokens (laptops hold one each).
    #[command(subcommand)]
    Token(admin::TokenCmd),
    /// Manage repositories (storage locations).
    #[command(subcommand)]
    Repo(admin::RepoCmd),
    /// Manage mailboxes.
    #[command(subcommand)]
    Mailbox(admin::MailboxCmd),
    /// Import mbox files, Maildir folders and .eml files into a mailbox's archive.
    Import(import::ImportArgs),
    /// Archive mail from a mailbox's IMAP server, leaving stubs with message links.
    Archive(archive::ArchiveArgs),
    /// Search the archive (the mailboxes you may search).
    Search(read::SearchArgs),
    /// Print an archived message's original bytes.
    Get(read::GetArgs),
    /// Offline synchronization: enable, schedule, synchronize now, flush.
    #[command(subcommand)]
    Offline(offline::OfflineCmd),
    /// Recent jobs (offline updates) and how they ended.
    Jobs(offline::JobsArgs),
    /// The audit trail: verify its hash chain, its head, list entries (administrators).
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Retention periods and expiry (administrators).
    #[command(subcommand)]
    Retention(retention::RetentionCmd),
    /// Legal holds: mail that survives retention and deletion (administrators).
    #[command(subcommand)]
    Hold(hold::HoldCmd),
    /// Write a mailbox's messages (all, or those matching a query) to an mbox file or a Maildir.
    Export(export::ExportArgs),
    /// Have the running service write a backup (catalog and disk repositories) into a folder on its machine (administrators).
    Backup(backup::BackupArgs),
    /// Make a new data folder from a backup, checking every pack (runs here, no service).
    Restore(backup::RestoreArgs),
    /// Delete a message from a mailbox, with a reason (administrators; audited).
    Delete(delete::DeleteArgs),
    /// The laptop client: local copies of your offline mailboxes, message links offline.
    Laptop(laptop::LaptopArgs),
}

impl Command {
    pub fn is_one_request(&self) -> bool {
        matches!(self, Command::Search(_) | Command::Get(_))
    }

    /// A server that runs until stopped (`serve`, `laptop run`), as opposed to
    /// a command whose output is its result.
    pub fn is_server(&self) -> bool {
        match self {
            Command::Serve(_) => true,
            Command::Laptop(a) => a.is_agent(),
            _ => false,
        }
    }

    /// How log lines are written: `serve` may ask for JSON.
    pub fn log_format(&self) -> crate::config::LogFormat {
        match self {
            Command::Serve(a) => serve::log_format(a),
            _ => crate::config::LogFormat::Text,
        }
    }

    /// Everything a `laptop` command writes is in the user's laptop home.
    pub fn is_laptop(&self) -> bool {
        matches!(self, Command::Laptop(_))
    }
}

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(a) => serve::run(a).await,
        Command::User(c) => admin::user(c).await,
        Command::Token(c) => admin::token(c).await,
        Command::Repo(c) => admin::repo(c).await,
        Command::Mailbox(c) => admin::mailbox(c).await,
        Command::Import(a) => import::run(a).await,
        Command::Archive(a) => archive::run(a).await,
        Command::Search(a) => read::search(a).await,
        Command::Get(a) => read::get(a).await,
        Command::Offline(c) => offline::run(c).await,
        Command::Jobs(a) => offline::jobs(a).await,
        Command::Laptop(a) => laptop::run(a).await,
        Command::Audit(c) => audit::run(c).await,
        Command::Export(a) => export::run(a).await,
        Command::Retention(c) => retention::run(c).await,
        Command::Hold(c) => hold::run(c).await,
        Command::Backup(a) => backup::backup(a).await,
        Command::Restore(a) => backup::restore(a),
        Command::Delete(a) => delete::delete(a).await,
    }
}

/// Reads a password from standard input (first line, without its newline).
pub fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!pw.is_empty(), "no password on standard input");
    Ok(pw)
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
