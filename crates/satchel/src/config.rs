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
use serde::{Deserialize, Serialize};
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
    /// Connections each node keeps to a PostgreSQL catalog.
    pub catalog_connections: Option<usize>,
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub limits: Limits,
    pub log_format: Option<LogFormat>,
    pub metrics: Option<MetricsSection>,
    pub ldap: Option<LdapSection>,
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

/// `[ldap]`: directory sign-in (docs/serve.md). Printed as it is by
/// `--check-config`: it holds the name of the variable with the bind
/// password, never the password.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSection {
    /// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
    pub url: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_password_env: Option<String>,
    pub base_dn: String,
    #[serde(default = "default_user_filter")]
    pub user_filter: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_group: Option<String>,
}

fn default_user_filter() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_USER_FILTER.to_string())
}

/// The `ldap.user_filter` when none is given.
pub const DEFAULT_USER_FILTER: &str = "(uid={user})";

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
    pub s3_cache_bytes: Option<u64>,
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
    if let Some(ldap) = &config.ldap {
        ldap.check(text)?;
    }
    Ok(config)
}

impl LdapSection {
    fn check(&self, text: &str) -> Result<(), String> {
        let url = self.url.get_ref();
        let scheme_ok = url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "ldap" | "ldaps") && u.host().is_some());
        if !scheme_ok {
            return Err(at(
                text,
                Some(self.url.span()),
                "must be ldap://HOST[:PORT] or ldaps://HOST[:PORT]",
            ));
        }
        let filter = self.user_filter.get_ref();
        if !filter.contains("{user}") || !filter.starts_with('(') || !filter.ends_with(')') {
            return Err(at(
                text,
                Some(self.user_filter.span()),
                "must be an LDAP filter in parentheses with {user} for the name, e.g. (uid={user})",
            ));
        }
        Ok(())
    }

    /// The directory settings in force: the bind password read from the
    /// variable `bind_password_env` names.
    pub fn directory(&self) -> Result<satchel_server::directory::DirectoryConfig> {
        let bind_password = match (&self.bind_dn, &self.bind_password_env) {
            (_, Some(var)) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!(
                    "ldap.bind_password_env: the environment variable {var} (the bind password) is not set"
                )
            })?),
            (Some(_), None) => bail!(
                "ldap.bind_dn needs ldap.bind_password_env, the environment variable holding its password"
            ),
            (None, None) => None,
        };
        Ok(satchel_server::directory::DirectoryConfig {
            url: self.url.get_ref().clone(),
            bind_dn: self.bind_dn.clone(),
            bind_password,
            base_dn: self.base_dn.clone(),
            user_filter: self.user_filter.get_ref().clone(),
            admin_group: self.admin_group.clone(),
        })
    }
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
    fn ldap_keys_are_checked_with_their_line() {
        let e = parse("[ldap]\nurl = \"http://x\"\nbase_dn = \"dc=x\"\n").unwrap_err();
        assert!(
            e.starts_with(", line 2, key ldap.url: must be ldap://"),
            "{e}"
        );
        let e = parse("[ldap]\nurl = \"ldap://x\"\nbase_dn = \"dc=x\"\nuser_filter = \"uid=x\"\n")
            .unwrap_err();
        assert!(e.starts_with(", line 4, key ldap.user_filter: "), "{e}");
        let e = parse("[ldap]\nurl = \"ldap://x\"\n").unwrap_err();
        assert!(e.contains("missing field `base_dn`"), "{e}");
        let ok = parse("[ldap]\nurl = \"ldaps://x\"\nbase_dn = \"dc=x\"\n").expect("valid");
        let ldap = ok.ldap.expect("[ldap]");
        assert_eq!(ldap.user_filter.get_ref(), DEFAULT_USER_FILTER);
        let e = LdapSection {
            bind_dn: Some("cn=r".into()),
            ..ldap
        }
        .directory()
        .unwrap_err();
        assert!(e.to_string().contains("bind_password_env"), "{e}");
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
