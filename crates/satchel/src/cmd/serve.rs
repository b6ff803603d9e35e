use anyhow::Result;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// Data folder: catalog, index, default repository.
    #[arg(long, env = "SATCHEL_DATA", default_value = "./satchel-data")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "SATCHEL_LISTEN", default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// Password hashes computed at once; more sign-ins wait (default: half
    /// the cores, at least 1).
    #[arg(long, env = "SATCHEL_PASSWORD_CHECKS")]
    password_checks: Option<usize>,
    /// Largest request the service accepts, in bytes: an import batch, so the
    /// largest message that can be imported (larger is refused with 413).
    #[arg(
        long,
        env = "SATCHEL_MAX_REQUEST_BYTES",
        default_value_t = satchel_server::http::DEFAULT_MAX_REQUEST_BYTES,
        value_parser = clap::value_parser!(u64).range(65_536..)
    )]
    max_request_bytes: u64,
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
}

pub async fn run(a: ServeArgs) -> Result<ExitCode> {
    let data = if a.data.is_absolute() {
        a.data
    } else {
        std::env::current_dir()?.join(a.data)
    };
    // SATCHEL_KEY (64 hex digits) wins over any key file; it is read from the
    // environment only, never from the command line (which `ps` shows).
    let key = match std::env::var("SATCHEL_KEY").ok().filter(|k| !k.is_empty()) {
        Some(hex) => satchel_server::KeySource::Hex(hex),
        None => satchel_server::KeySource::File(
            a.key_file
                .unwrap_or_else(|| satchel_server::default_key_file(&data)),
        ),
    };
    satchel_server::serve(satchel_server::ServeConfig {
        data,
        listen: a.listen,
        admin_password: std::env::var("SATCHEL_ADMIN_PASSWORD").ok(),
        password_checks: a.password_checks,
        max_request_bytes: a.max_request_bytes,
        key,
        catalog: a.catalog.filter(|c| !c.is_empty()),
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
