//! `satchel`: the one binary. A thin layer over the crates: parse the command line,
//! call the service (as an HTTP client) or run it, print the result.

mod cmd;
mod output;

use anyhow::Result;
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cmd::Cli::parse();
    init_tracing();
    // A one-request command does not need worker threads; starting them is a
    // measurable part of a 5 ms search.
    let runtime = if cli.command.is_one_request() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("satchel: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("satchel: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: cmd::Cli) -> Result<std::process::ExitCode> {
    cmd::dispatch(cli).await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SATCHEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only on a terminal: `satchel serve 2>service.log` stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
