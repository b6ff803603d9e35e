//! `satchel`: the one binary. A thin layer over the crates: parse the command line,
//! call the service (as an HTTP client) or run it, print the result.

mod cmd;
mod config;
mod output;

use anyhow::Result;
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cmd::Cli::parse();
    process_setup(&cli.command);
    init_tracing(cli.command.log_format());
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
        // `satchel ... | head`: the reader has all it wanted; nothing to report.
        Err(e) if is_closed_stdout(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("satchel: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: cmd::Cli) -> Result<std::process::ExitCode> {
    cmd::dispatch(cli).await
}

/// Process-wide settings that depend on the command.
///
/// * Output: `satchel search x | head` ends quietly once `head` has its lines
///   (see [`is_closed_stdout`]); servers keep reporting every panic. SIGPIPE stays ignored, as Rust sets it: its
///   default action would also kill a client whose upload the service cut
///   short (socket writes with `writev` raise it), instead of reporting why.
/// * A `laptop` command creates every file readable by its user only
///   (umask 077): the home holds mail, and the search index's files are
///   created by tantivy, whose modes cannot be chosen otherwise.
fn process_setup(command: &cmd::Command) {
    if !command.is_server() {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if is_closed_stdout_panic(info.payload()) {
                std::process::exit(0);
            }
            report(info)
        }));
    }
    #[cfg(unix)]
    if command.is_laptop() {
        // SAFETY: `umask` only sets the calling process's file mode creation
        // mask; it cannot fail and touches no memory.
        unsafe {
            libc::umask(0o077);
        }
    }
    #[cfg(not(unix))]
    let _ = command;
}

/// Whether a command failed only because its reader closed standard output
/// (`| head`): an I/O error of its own (network errors come wrapped in the
/// client's error types) whose kind is BrokenPipe.
fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `println!` panics with "failed printing to stdout: <error>" when the write
/// fails; this recognises the case where that error is a broken pipe (its OS
/// error code, asked of std, is of kind BrokenPipe).
fn is_closed_stdout_panic(payload: &(dyn std::any::Any + Send)) -> bool {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    text.strip_prefix("failed printing to stdout: ")
        .and_then(|e| {
            e.rsplit_once("(os error ")?
                .1
                .strip_suffix(')')?
                .parse()
                .ok()
        })
        .is_some_and(|code| {
            std::io::Error::from_raw_os_error(code).kind() == std::io::ErrorKind::BrokenPipe
        })
}

/// Log lines to standard error, as text or (`serve --log-format json`) one
/// JSON object per line; a request's lines carry its span (request id,
/// method, route) either way.
fn init_tracing(format: config::LogFormat) {
    // rustls-platform-verifier logs each refused certificate as an error of
    // its own; the client reports it once, saying how to trust the service.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SATCHEL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,rustls_platform_verifier=off")
    });
    // Colour only on a terminal: `satchel serve 2>service.log` stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => fmt.with_ansi(ansi).init(),
        config::LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
