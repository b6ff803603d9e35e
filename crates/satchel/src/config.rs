//! The service's configuration file, `satchel serve --config FILE` (default
//! [`DEFAULT_PATH`] when it exists): TOML, one key per setting, every key
//! commented in packaging/satchel.toml.
//!
//! A setting comes from the first of: a flag, its environment variable, the
//! file, the built-in default (flags and environment are merged by clap). An
//! unknown key, a value of the wrong type or out of range is an error naming
//! the key and its line: a typo never silently falls back to a default.
//! Relative paths in the file are relative to the file's folder.
//!
//! Later sections (a directory, metrics) are new optional fields of
//! [`FileConfig`] with their own `deny_unknown_fields` struct.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where `satchel serve` looks for its configuration when not told.
pub const DEFAULT_PATH: &str = "/etc/satchel/satchel.toml";

/// The smallest `limits.max_request_bytes` (as for the flag).
pub const MIN_REQUEST_BYTES: u64 = 65_536;

/// The file as written: every field optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub catalog: Option<String>,
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub limits: Limits,
    pub log_format: Option<LogFormat>,
    pub metrics: Option<MetricsSection>,
}

/// How the service writes its log lines (`log_format`, `--log-format`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people (the default).
    #[default]
    Text,
    /// One JSON object per line, with the request's id and route.
    Json,
}

/// `[metrics]`: the networks (CIDR) whose addresses may read `/metrics`
/// [default: loopback only].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub allow: Option<Vec<ipnet::IpNet>>,
}

/// `[tls]`: serve HTTPS with this certificate chain and key (PEM).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_request_bytes: Option<Spanned<u64>>,
    pub password_checks: Option<usize>,
}

/// The file `--config` names, else [`DEFAULT_PATH`] if it exists, else none.
pub fn locate(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| {
        let default = PathBuf::from(DEFAULT_PATH);
        default.exists().then_some(default)
    })
}

/// Reads and checks `path`; relative paths in it are made relative to its
/// folder.
pub fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let mut config = parse(&text).map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    config.anchor(base);
    Ok(config)
}

/// Parses and checks the text of a configuration file. The error starts
/// with ", line N, key K: " (the caller puts the file's name before it).
pub fn parse(text: &str) -> Result<FileConfig, String> {
    let config: FileConfig = toml::from_str(text).map_err(|e| at(text, e.span(), e.message()))?;
    config.limits.check(text)?;
    Ok(config)
}

impl Limits {
    fn check(&self, text: &str) -> Result<(), String> {
        if let Some(max) = &self.max_request_bytes
            && *max.get_ref() < MIN_REQUEST_BYTES
        {
            return Err(at(
                text,
                Some(max.span()),
                &format!("must be at least {MIN_REQUEST_BYTES} bytes"),
            ));
        }
        Ok(())
    }
}

impl FileConfig {
    /// Makes the file's relative paths relative to `base`, its folder.
    fn anchor(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && path.is_relative()
            {
                *path = base.join(&*path);
            }
        };
        fix(&mut self.data);
        fix(&mut self.key_file);
        if let Some(tls) = &mut self.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
    }
}

/// ", line N, key K: MESSAGE" for the byte range `span` of `text`: the line
/// number, and the dotted key written on that line (with the `[table]` it
/// is in).
fn at(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let message = message.trim_end();
    let Some(span) = span else {
        return format!(": {message}");
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    match key_on_line(text, line) {
        Some(key) => format!(", line {line}, key {key}: {message}"),
        None => format!(", line {line}: {message}"),
    }
}

/// The key assigned on line `line` (1-based) of `text`, prefixed by the
/// table header above it: `limits.max_request_bytes`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (n, raw) in text.lines().enumerate().take(line) {
        let l = raw.trim();
        if let Some(header) = l.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = header.trim().to_string();
            if n + 1 == line {
                return Some(table);
            }
            continue;
        }
        if n + 1 == line {
            let key = l.split('=').next()?.trim();
            if key.is_empty() || key.starts_with('#') {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

/// `raw` with the password of its user part (`postgres://USER:PASSWORD@…`)
/// and a `password` parameter replaced by `***`, for printing. Something
/// that is not a URL is not printed at all.
pub fn mask_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "(hidden: not a URL)".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "password" {
                "***".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if pairs.iter().any(|(k, _)| k == "password") {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Fails unless both or neither of the TLS files are given.
pub fn tls_pair(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<satchel_server::tls::TlsFiles>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(satchel_server::tls::TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("a TLS certificate without its key: give --tls-key (or tls.key)"),
        (None, Some(_)) => {
            bail!("a TLS key without its certificate: give --tls-cert (or tls.cert)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let e = parse("listen = \"127.0.0.1:1\"\n\n[limits]\npasword_checks = 2\n").unwrap_err();
        assert!(
            e.starts_with(", line 4, key limits.pasword_checks: unknown field `pasword_checks`"),
            "{e}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_or_range_is_named_with_its_line() {
        let e = parse("data = \"/d\"\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(e.starts_with(", line 2, key listen: "), "{e}");
        let e = parse("[limits]\nmax_request_bytes = 10\n").unwrap_err();
        assert_eq!(
            e,
            ", line 2, key limits.max_request_bytes: must be at least 65536 bytes"
        );
    }

    #[test]
    fn catalog_passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://satchel:s3cret@db:5432/satchel"),
            "postgres://satchel:***@db:5432/satchel"
        );
        assert_eq!(
            mask_url("postgres://satchel@db/satchel?password=s3cret&sslmode=require"),
            "postgres://satchel@db/satchel?password=***&sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://satchel@db/satchel"),
            "postgres://satchel@db/satchel"
        );
    }
}
