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
}

pub async fn run(a: ServeArgs) -> Result<ExitCode> {
    let data = if a.data.is_absolute() {
        a.data
    } else {
        std::env::current_dir()?.join(a.data)
    };
    satchel_server::serve(satchel_server::ServeConfig {
        data,
        listen: a.listen,
        admin_password: std::env::var("SATCHEL_ADMIN_PASSWORD").ok(),
        password_checks: a.password_checks,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
