//! Administration: users, API tokens, repositories, mailboxes and grants.

use super::{Remote, password_from_stdin};
use crate::output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use satchel_api as api;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List users.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a password (yours; an administrator: anyone's), read from
    /// standard input. Revokes all of that user's API tokens: laptops set up
    /// with them must run `satchel laptop setup` again.
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a user with everything they hold: API tokens, grants, console
    /// sessions. The last administrator cannot be removed.
    Remove {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Your API tokens (an administrator: everyone's): id, user, created, label.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke an API token by the id `satchel token list` shows.
    Revoke {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
pub enum RepoCmd {
    /// Add a repository: a local-disk folder, or an S3-compatible bucket.
    Add {
        name: String,
        /// Folder on the service's machine, absolute. One inside the data folder
        /// is recorded relative to it, so each node finds it in its own.
        #[arg(long, required_unless_present = "s3", conflicts_with = "s3")]
        disk: Option<std::path::PathBuf>,
        /// S3-compatible bucket, s3://BUCKET/PREFIX. The service reads its
        /// credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
        /// AWS_REGION (default us-east-1).
        #[arg(long)]
        s3: Option<String>,
        /// The S3 endpoint URL (http(s)://HOST:PORT); AWS itself when omitted.
        #[arg(long, requires = "s3")]
        endpoint: Option<String>,
        /// Cold storage: mailboxes with mail here cannot be synchronized offline.
        #[arg(long)]
        cold: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List repositories.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Give back the space of messages no mailbox holds (rewrites packs
    /// mostly dead, deletes dead ones).
    Gc(super::delete::GcArgs),
}

#[derive(Args)]
pub struct MailboxAdd {
    address: String,
    /// Default repository (else "default").
    #[arg(long)]
    repo: Option<String>,
    /// IMAP server, imap://HOST:PORT or imaps://HOST:PORT.
    #[arg(long, requires_all = ["imap_user", "imap_password_env"])]
    imap: Option<String>,
    #[arg(long)]
    imap_user: Option<String>,
    /// Name of the environment variable holding the IMAP password.
    #[arg(long)]
    imap_password_env: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
pub enum MailboxCmd {
    /// Add a mailbox.
    Add(MailboxAdd),
    /// List the mailboxes you may see.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one mailbox.
    Show {
        address: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a mailbox's default repository (earlier mail stays reachable).
    SetRepo {
        address: String,
        repo: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Allow USER to search ADDRESS.
    Grant {
        address: String,
        user: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Withdraw USER's right to search ADDRESS.
    Revoke {
        address: String,
        user: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn user(cmd: UserCmd) -> Result<ExitCode> {
    match cmd {
        UserCmd::Add {
            name,
            admin,
            remote,
            ..
        } => {
            let password = password_from_stdin()?;
            let user = remote
                .client()?
                .add_user(&api::NewUser {
                    name,
                    password,
                    admin,
                })
                .await?;
            if remote.json {
                output::json(&user)?;
            } else {
                println!(
                    "added user {}{}",
                    user.name,
                    if user.admin { " (admin)" } else { "" }
                );
            }
        }
        UserCmd::List { remote } => {
            let users = remote.client()?.users().await?;
            if remote.json {
                output::json(&users)?;
            } else {
                for u in users {
                    println!("{}{}", u.name, if u.admin { "  admin" } else { "" });
                }
            }
        }
        UserCmd::Passwd { name, remote, .. } => {
            let password = password_from_stdin()?;
            let changed = remote.client()?.set_password(&name, &password).await?;
            if remote.json {
                output::json(&changed)?;
            } else {
                println!(
                    "changed the password of {}; {} API token(s) revoked",
                    changed.user, changed.tokens_revoked
                );
            }
        }
        UserCmd::Remove { name, remote } => {
            let removed = remote.client()?.remove_user(&name).await?;
            if remote.json {
                output::json(&removed)?;
            } else {
                println!(
                    "removed user {}; {} API token(s) and {} grant(s) revoked",
                    removed.user, removed.tokens_revoked, removed.grants_revoked
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn token(cmd: TokenCmd) -> Result<ExitCode> {
    match cmd {
        TokenCmd::List { remote } => {
            let tokens = remote.client()?.tokens().await?;
            if remote.json {
                output::json(&tokens)?;
            } else {
                println!("{:<16}  {:<16} {:<25} LABEL", "ID", "USER", "CREATED");
                for t in tokens {
                    println!("{:<16}  {:<16} {:<25} {}", t.id, t.user, t.created, t.label);
                }
            }
        }
        TokenCmd::Revoke { id, remote } => {
            let t = remote.client()?.revoke_token(&id).await?;
            if remote.json {
                output::json(&t)?;
            } else {
                println!("revoked API token {} of {} ({})", t.id, t.user, t.label);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn repo(cmd: RepoCmd) -> Result<ExitCode> {
    match cmd {
        RepoCmd::Add {
            name,
            disk,
            s3,
            endpoint,
            cold,
            remote,
        } => {
            let disk = match disk {
                Some(d) if d.is_absolute() => d.display().to_string(),
                Some(d) => std::env::current_dir()?.join(d).display().to_string(),
                None => String::new(),
            };
            let repo = remote
                .client()?
                .add_repository(&api::NewRepository {
                    name,
                    disk,
                    s3,
                    endpoint,
                    cold,
                })
                .await?;
            if remote.json {
                output::json(&repo)?;
            } else {
                println!(
                    "added repository {} ({} {}{})",
                    repo.name,
                    repo.kind,
                    repo.path,
                    repository_extras(&repo)
                );
            }
        }
        RepoCmd::Gc(a) => return super::delete::gc(a).await,
        RepoCmd::List { remote } => {
            let repos = remote.client()?.repositories().await?;
            if remote.json {
                output::json(&repos)?;
            } else {
                for r in repos {
                    println!(
                        "{:<16} {:<6} {}{}",
                        r.name,
                        r.kind,
                        r.path,
                        repository_extras(&r)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn mailbox(cmd: MailboxCmd) -> Result<ExitCode> {
    match cmd {
        MailboxCmd::Add(a) => {
            let imap_password = match &a.imap_password_env {
                Some(var) => Some(
                    std::env::var(var)
                        .with_context(|| format!("environment variable {var} is not set"))?,
                ),
                None => None,
            };
            let mb = a
                .remote
                .client()?
                .add_mailbox(&api::NewMailbox {
                    address: a.address,
                    repo: a.repo,
                    imap_url: a.imap,
                    imap_user: a.imap_user,
                    imap_password,
                })
                .await?;
            show(&mb, a.remote.json)?;
        }
        MailboxCmd::List { remote } => {
            let list = remote.client()?.mailboxes().await?;
            if remote.json {
                output::json(&list)?;
            } else {
                println!(
                    "{:<32} {:<12} {:>9} {:>10}",
                    "ADDRESS", "REPOSITORY", "MESSAGES", "SIZE"
                );
                for m in list {
                    println!(
                        "{:<32} {:<12} {:>9} {:>10}",
                        m.address,
                        m.repo,
                        m.messages,
                        output::bytes(m.bytes)
                    );
                }
            }
        }
        MailboxCmd::Show { address, remote } => {
            let mb = remote.client()?.mailbox(&address).await?;
            show(&mb, remote.json)?;
        }
        MailboxCmd::SetRepo {
            address,
            repo,
            remote,
        } => {
            let mb = remote.client()?.set_repository(&address, &repo).await?;
            show(&mb, remote.json)?;
        }
        MailboxCmd::Grant {
            address,
            user,
            remote,
        } => {
            let mb = remote.client()?.grant(&address, &user).await?;
            show(&mb, remote.json)?;
        }
        MailboxCmd::Revoke {
            address,
            user,
            remote,
        } => {
            let mb = remote.client()?.revoke(&address, &user).await?;
            show(&mb, remote.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(mb: &api::Mailbox, json: bool) -> Result<()> {
    if json {
        return output::json(mb);
    }
    println!("mailbox     {}", mb.address);
    println!("repository  {}", mb.repo);
    if let (Some(url), Some(user)) = (&mb.imap_url, &mb.imap_user) {
        println!("imap        {url} (user {user})");
    }
    println!("messages    {}", mb.messages);
    println!("size        {}", output::bytes(mb.bytes));
    println!(
        "may search  {}",
        if mb.grants.is_empty() {
            "(administrators only)".to_string()
        } else {
            mb.grants.join(", ")
        }
    );
    Ok(())
}

/// What `repo add` and `repo list` print after a repository's place: its
/// endpoint and `cold`, when they apply.
fn repository_extras(r: &api::Repository) -> String {
    let mut extras = String::new();
    if let Some(endpoint) = &r.endpoint {
        extras.push_str(&format!(" endpoint={endpoint}"));
    }
    if r.cold {
        extras.push_str(" cold");
    }
    extras
}
