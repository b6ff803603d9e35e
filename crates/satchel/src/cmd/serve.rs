use crate::config::{self, FileConfig, LogFormat};
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Each setting: flag, else environment variable, else the configuration
/// file, else the default named in its help.
#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; every key in packaging/satchel.toml).
    /// Default: /etc/satchel/satchel.toml when it exists. Flags and
    /// environment variables override it.
    #[arg(long, env = "SATCHEL_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets masked) and exit: 0 when it
    /// is valid (TLS files included), else the error.
    #[arg(long)]
    check_config: bool,
    /// Data folder: catalog, index, default repository [default: ./satchel-data].
    #[arg(long, env = "SATCHEL_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8480].
    #[arg(long, env = "SATCHEL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Password hashes computed at once; more sign-ins wait (default: half
    /// the cores, at least 1).
    #[arg(long, env = "SATCHEL_PASSWORD_CHECKS")]
    password_checks: Option<usize>,
    /// Largest request the service accepts, in bytes: an import batch, so the
    /// largest message that can be imported (larger is refused with 413)
    /// [default: 268435456].
    #[arg(
        long,
        env = "SATCHEL_MAX_REQUEST_BYTES",
        value_parser = clap::value_parser!(u64).range(config::MIN_REQUEST_BYTES..)
    )]
    max_request_bytes: Option<u64>,
    /// Message bytes read from S3 repositories that this node keeps in
    /// memory for later reads (search snippets, offline builds); 0 keeps
    /// none [default: 268435456].
    #[arg(long, env = "SATCHEL_S3_CACHE_BYTES")]
    s3_cache_bytes: Option<u64>,
    /// The file holding the key that seals IMAP passwords in the catalog
    /// (created with a fresh key on first start). Keep it outside the data
    /// folder. Default: beside the data folder, `<data folder>.key`.
    #[arg(long, env = "SATCHEL_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Keep the catalog in PostgreSQL: postgres://USER@HOST:PORT/DATABASE
    /// (a password is better given in SATCHEL_CATALOG than on the command
    /// line, which `ps` shows). Default: SQLite in the data folder. The
    /// search index and disk repositories stay in the data folder.
    #[arg(long, env = "SATCHEL_CATALOG", hide_env_values = true)]
    catalog: Option<String>,
    /// Connections this node keeps to a PostgreSQL catalog, so requests do
    /// not queue behind one another's statements [default: 8]. A SQLite
    /// catalog keeps one.
    #[arg(
        long,
        env = "SATCHEL_CATALOG_CONNECTIONS",
        value_parser = clap::value_parser!(u64).range(1..=1000)
    )]
    catalog_connections: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    /// Both files are read again on SIGHUP.
    #[arg(long, env = "SATCHEL_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "SATCHEL_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Log lines as text (default) or JSON objects, one per line, each
    /// naming the request it belongs to.
    #[arg(long, env = "SATCHEL_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

/// The log format, wanted before the service starts (logging is set up
/// first): the flag, else the file's. A file that does not load counts as
/// none here; `run` reports its error.
pub fn log_format(a: &ServeArgs) -> LogFormat {
    a.log_format
        .or_else(|| {
            let file = config::load(&config::locate(a.config.clone())?).ok()?;
            file.log_format
        })
        .unwrap_or_default()
}

pub async fn run(a: ServeArgs) -> Result<ExitCode> {
    let file = match config::locate(a.config.clone()) {
        Some(path) => Some((config::load(&path)?, path)),
        None => None,
    };
    let source = file.as_ref().map(|(_, p)| p.display().to_string());
    let serve = resolve(a, file.map(|(c, _)| c).unwrap_or_default())?;
    if serve.check_only {
        if let Some(tls) = &serve.config.tls {
            satchel_server::tls::load(tls)?;
        }
        print!("{}", effective(&serve, source.as_deref())?);
        return Ok(ExitCode::SUCCESS);
    }
    // Held until the service stops; the kernel releases it if the process dies.
    let _lock = lock_data_folder(&serve.config.data)?;
    satchel_server::serve(serve.config).await?;
    Ok(ExitCode::SUCCESS)
}

/// The lock file in the data folder that one `satchel serve` holds at a time.
pub const LOCK_FILE: &str = "serve.lock";

/// Takes the data folder's lock (an advisory `flock`, std's `File::try_lock`)
/// before anything in it is opened, and writes this process's id into the
/// lock file. A second service on the same folder is refused here, naming the
/// folder and the holder's pid, instead of failing later inside the search
/// index ("LockBusy"). The lock dies with its process, so a crash leaves a
/// stale pid in the file but never a stale lock.
fn lock_data_folder(data: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let path = data.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = match holder.trim() {
                "" => "its pid not yet written".to_string(),
                pid => format!("pid {pid}"),
            };
            anyhow::bail!(
                "the data folder {} is in use by another satchel serve ({pid}, holding {}); stop it, or give this one another --data",
                data.display(),
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // The pid only helps the message above; a full disk must not stop a
    // service that can still serve what it holds.
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    if let Err(e) = written {
        tracing::warn!(error = %e, file = %path.display(), "cannot write the pid into the lock file");
    }
    Ok(file)
}

/// The settings in force and, for printing, whether the sealing key came
/// from SATCHEL_KEY.
struct Resolved {
    config: satchel_server::ServeConfig,
    check_only: bool,
    key_from_env: bool,
    log_format: LogFormat,
    /// `[ldap]` as written (it names the password's variable, not the
    /// password).
    ldap: Option<config::LdapSection>,
}

/// Flags and environment (merged by clap) over the file over the defaults.
fn resolve(a: ServeArgs, file: FileConfig) -> Result<Resolved> {
    let data = a
        .data
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from("./satchel-data"));
    let data = if data.is_absolute() {
        data
    } else {
        std::env::current_dir()?.join(data)
    };
    let listen = a
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8480)));
    let password_checks = a.password_checks.or(file.limits.password_checks);
    let max_request_bytes = a
        .max_request_bytes
        .or(file.limits.max_request_bytes.map(|s| s.into_inner()))
        .unwrap_or(satchel_server::http::DEFAULT_MAX_REQUEST_BYTES);
    let s3_cache_bytes = a
        .s3_cache_bytes
        .or(file.limits.s3_cache_bytes)
        .unwrap_or(satchel_archive::repository::cache::DEFAULT_BYTES);
    let file_tls = file.tls.unwrap_or_default();
    let tls = config::tls_pair(a.tls_cert.or(file_tls.cert), a.tls_key.or(file_tls.key))?;
    // SATCHEL_KEY (64 hex digits) wins over any key file; it is read from the
    // environment only, never from the command line (which `ps` shows).
    let env_key = std::env::var("SATCHEL_KEY").ok().filter(|k| !k.is_empty());
    let key_from_env = env_key.is_some();
    let key = match env_key {
        Some(hex) => satchel_server::KeySource::Hex(hex),
        None => satchel_server::KeySource::File(
            a.key_file
                .or(file.key_file)
                .unwrap_or_else(|| satchel_server::default_key_file(&data)),
        ),
    };
    let catalog = a.catalog.or(file.catalog).filter(|c| !c.is_empty());
    let catalog_connections = match a.catalog_connections {
        Some(n) => usize::try_from(n)?,
        None => match file.catalog_connections {
            Some(n) if !(1..=1000).contains(&n) => {
                anyhow::bail!("catalog_connections must be between 1 and 1000, not {n}")
            }
            Some(n) => n,
            None => satchel_server::DEFAULT_CATALOG_CONNECTIONS,
        },
    };
    let log_format = a.log_format.or(file.log_format).unwrap_or_default();
    let metrics_allow = file
        .metrics
        .and_then(|m| m.allow)
        .unwrap_or_else(satchel_server::metrics::default_allow);
    let directory = file.ldap.as_ref().map(|l| l.directory()).transpose()?;
    let config = satchel_server::ServeConfig {
        data,
        listen,
        admin_password: std::env::var("SATCHEL_ADMIN_PASSWORD").ok(),
        password_checks,
        max_request_bytes,
        s3_cache_bytes,
        key,
        catalog,
        catalog_connections,
        tls,
        metrics_allow,
        directory,
    };
    Ok(Resolved {
        config,
        check_only: a.check_config,
        key_from_env,
        log_format,
        ldap: file.ldap,
    })
}

/// What `--check-config` prints: a valid configuration file.
#[derive(Serialize)]
struct Effective {
    listen: String,
    data: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<String>,
    /// Shown with a PostgreSQL catalog only (SQLite keeps one).
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog_connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<EffectiveTls>,
    limits: EffectiveLimits,
    log_format: LogFormat,
    metrics: EffectiveMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    ldap: Option<config::LdapSection>,
}

#[derive(Serialize)]
struct EffectiveMetrics {
    allow: Vec<String>,
}

#[derive(Serialize)]
struct EffectiveTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Serialize)]
struct EffectiveLimits {
    max_request_bytes: u64,
    password_checks: usize,
    s3_cache_bytes: u64,
}

/// The effective configuration as TOML, with the catalog's password masked
/// and the sealing key never shown.
fn effective(r: &Resolved, source: Option<&str>) -> Result<String> {
    let c = &r.config;
    let key_file = match &c.key {
        satchel_server::KeySource::File(f) => Some(f.clone()),
        satchel_server::KeySource::Hex(_) => None,
    };
    let shown = Effective {
        listen: c.listen.to_string(),
        data: c.data.clone(),
        key_file,
        catalog: c.catalog.as_deref().map(config::mask_url),
        catalog_connections: c.catalog.as_ref().map(|_| c.catalog_connections),
        tls: c.tls.as_ref().map(|t| EffectiveTls {
            cert: t.cert.clone(),
            key: t.key.clone(),
        }),
        limits: EffectiveLimits {
            max_request_bytes: c.max_request_bytes,
            password_checks: c
                .password_checks
                .unwrap_or_else(satchel_server::signin::default_hash_slots),
            s3_cache_bytes: c.s3_cache_bytes,
        },
        log_format: r.log_format,
        metrics: EffectiveMetrics {
            allow: c.metrics_allow.iter().map(ToString::to_string).collect(),
        },
        ldap: r.ldap.clone(),
    };
    let mut out = format!(
        "# satchel serve: the effective configuration (flags > environment > {} > defaults)\n",
        source.unwrap_or("no configuration file")
    );
    if c.catalog.is_none() {
        out.push_str("# catalog: SQLite in the data folder\n");
    }
    if r.key_from_env {
        out.push_str("# sealing key: from SATCHEL_KEY (not shown)\n");
    }
    out.push_str(&toml::to_string(&shown)?);
    Ok(out)
}
