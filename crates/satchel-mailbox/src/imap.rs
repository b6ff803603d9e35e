//! The IMAP source: a small client over `async-imap` for what archive runs need
//! (LOGIN, LIST, SELECT, UID SEARCH/FETCH/STORE/EXPUNGE, APPEND), plain on
//! `imap://` and TLS (rustls, webpki roots plus a private CA named by
//! `SATCHEL_IMAP_CA_FILE`) on `imaps://`. Every command has a
//! deadline, and every failure becomes a [`RunError`] that names the server and
//! quotes its answer.

use crate::error::{Result, RunError};
use async_imap::types::{Fetch, Flag};
use chrono::{DateTime, FixedOffset};
use futures::TryStreamExt;
use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long one IMAP command may take before the run gives up on the server.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

/// Names a PEM file of extra CA certificates trusted for `imaps://` servers
/// (a private CA), in addition to the public web roots.
pub const CA_FILE_VAR: &str = "SATCHEL_IMAP_CA_FILE";

/// The certificates an `imaps://` server's chain may end in: the public web
/// roots (webpki-roots) plus those of [`CA_FILE_VAR`]. Read at every connect,
/// so a replaced CA file needs no restart.
fn tls_roots() -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let Some(file) = std::env::var_os(CA_FILE_VAR).filter(|f| !f.is_empty()) else {
        return Ok(roots);
    };
    let bad = |why: String| RunError::Config(format!("{CA_FILE_VAR}={}: {why}", file.display()));
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&file)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(roots)
}

/// A failed TLS handshake, saying plainly when the server's certificate did
/// not verify (the connection is refused then, never used).
fn handshake_error(server: &str, e: std::io::Error) -> RunError {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(rustls::Error::InvalidCertificate(why)) = rustls_error {
        return RunError::Imap(format!(
            "IMAP server {server}: its TLS certificate does not verify ({why:?}); \
             the connection was refused. If the server uses a private CA, give its \
             certificate (PEM) in {CA_FILE_VAR}"
        ));
    }
    RunError::Imap(format!(
        "TLS handshake with IMAP server {server} failed: {e}"
    ))
}

/// `imap://HOST[:PORT]` (plain, default 143) or `imaps://HOST[:PORT]` (TLS, 993).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl ImapUrl {
    /// Parses the URL with the `url` crate; anything but a scheme, a host
    /// and an optional port (a user, a path, a query) is refused with a
    /// message that shows the expected form.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            RunError::Config(format!(
                "IMAP URL {text:?} {why}: use imap://HOST[:PORT] or imaps://HOST[:PORT]"
            ))
        };
        let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        let tls = match url.scheme() {
            "imaps" => true,
            "imap" => false,
            _ => return Err(bad("has an unknown scheme")),
        };
        let only_host = url.username().is_empty()
            && url.password().is_none()
            && matches!(url.path(), "" | "/")
            && url.query().is_none()
            && url.fragment().is_none();
        if !only_host {
            return Err(bad("is not HOST[:PORT]"));
        }
        let host = match url.host() {
            // Without the brackets: the connection and Display add them.
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) if !host.to_string().is_empty() => host.to_string(),
            _ => return Err(bad("has no host")),
        };
        let port = url.port().unwrap_or(if tls { 993 } else { 143 });
        Ok(ImapUrl { tls, host, port })
    }
}

impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "imaps" } else { "imap" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The connection under the IMAP session: plain TCP or rustls.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conn::Plain(_) => f.write_str("Conn::Plain"),
            Conn::Tls(_) => f.write_str("Conn::Tls"),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A message as fetched: its exact bytes and what the stub must carry over.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
    /// Flags as IMAP atoms (`\Seen`, `$Label1`), without `\Recent`.
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<FixedOffset>>,
    pub size: Option<u32>,
}

impl Fetched {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// A message to APPEND: bytes, flags and INTERNALDATE.
#[derive(Clone, Debug)]
pub struct Appendable {
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<FixedOffset>>,
    pub raw: Vec<u8>,
}

/// A selected folder.
#[derive(Clone, Debug)]
pub struct Selected {
    pub name: String,
    pub uidvalidity: u32,
    pub exists: u32,
}

/// A logged-in IMAP session.
pub struct Imap {
    session: async_imap::Session<Conn>,
    server: String,
    capabilities: HashSet<String>,
}

fn flag_atom(f: &Flag<'_>) -> Option<String> {
    Some(match f {
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::Recent | Flag::MayCreate => return None,
        Flag::Custom(c) => c.to_string(),
    })
}

/// `"07-Feb-1994 21:52:25 -0800"`: IMAP's date-time, for APPEND.
pub fn imap_datetime(d: &DateTime<FixedOffset>) -> String {
    format!("\"{}\"", d.format("%d-%b-%Y %H:%M:%S %z"))
}

/// `7-Feb-1994`: IMAP's date, for SEARCH BEFORE.
pub fn imap_date(d: chrono::NaiveDate) -> String {
    d.format("%-d-%b-%Y").to_string()
}

/// A UID set in IMAP syntax with ranges (`1:4,7,9:12`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Quotes a string for an IMAP command (folder names, search strings).
pub fn quote(s: &str) -> Result<String> {
    if s.contains(['\r', '\n', '\0']) {
        return Err(RunError::Config(format!(
            "{s:?} cannot be sent to IMAP (line break)"
        )));
    }
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

async fn deadline<T>(
    what: &str,
    server: &str,
    fut: impl std::future::Future<Output = std::result::Result<T, async_imap::error::Error>>,
) -> Result<T> {
    match tokio::time::timeout(COMMAND_DEADLINE, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(imap_error(what, server, e)),
        Err(_) => Err(RunError::Imap(format!(
            "IMAP server {server} did not answer {what} within {} s",
            COMMAND_DEADLINE.as_secs()
        ))),
    }
}

/// Turns an async-imap error into the run's error, quoting the server.
pub fn imap_error(what: &str, server: &str, e: async_imap::error::Error) -> RunError {
    use async_imap::error::Error as E;
    match e {
        E::No(msg) => RunError::Imap(format!(
            "IMAP server {server} refused {what}: {}",
            msg.trim()
        )),
        E::Bad(msg) => RunError::Imap(format!(
            "IMAP server {server} rejected {what} as bad: {}",
            msg.trim()
        )),
        E::ConnectionLost => RunError::Imap(format!(
            "IMAP server {server} closed the connection during {what}"
        )),
        E::Io(io) => RunError::Imap(format!(
            "connection to IMAP server {server} failed during {what}: {io}"
        )),
        E::Append => RunError::Imap(format!(
            "IMAP server {server} refused {what} (no continuation for the message)"
        )),
        other => RunError::Imap(format!("IMAP server {server}: {what} failed: {other}")),
    }
}

impl Imap {
    /// Connects, reads the greeting and logs in.
    pub async fn connect(url: &ImapUrl, user: &str, password: &str) -> Result<Imap> {
        let server = url.to_string();
        let tcp = tokio::time::timeout(
            CONNECT_DEADLINE,
            TcpStream::connect((url.host.as_str(), url.port)),
        )
        .await
        .map_err(|_| {
            RunError::Imap(format!(
                "cannot connect to IMAP server {server}: no answer within {} s",
                CONNECT_DEADLINE.as_secs()
            ))
        })?
        .map_err(|e| RunError::Imap(format!("cannot connect to IMAP server {server}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let conn = if url.tls {
            let roots = tls_roots()?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| RunError::Imap(format!("TLS setup: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| RunError::Config(format!("IMAP host {:?}: {e}", url.host)))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
            let stream = tokio::time::timeout(CONNECT_DEADLINE, tls.connect(name, tcp))
                .await
                .map_err(|_| RunError::Imap(format!("TLS handshake with {server} timed out")))?
                .map_err(|e| handshake_error(&server, e))?;
            Conn::Tls(Box::new(stream))
        } else {
            Conn::Plain(tcp)
        };
        let mut client = async_imap::Client::new(conn);
        let greeting = tokio::time::timeout(CONNECT_DEADLINE, client.read_response())
            .await
            .map_err(|_| RunError::Imap(format!("IMAP server {server} sent no greeting")))?
            .map_err(|e| {
                RunError::Imap(format!("IMAP server {server}: reading the greeting: {e}"))
            })?;
        if greeting.is_none() {
            return Err(RunError::Imap(format!(
                "IMAP server {server} closed the connection before its greeting"
            )));
        }
        let session =
            match tokio::time::timeout(COMMAND_DEADLINE, client.login(user, password)).await {
                Err(_) => {
                    return Err(RunError::Imap(format!(
                        "IMAP server {server} did not answer LOGIN"
                    )));
                }
                Ok(Err((e, _))) => return Err(imap_error(&format!("LOGIN as {user}"), &server, e)),
                Ok(Ok(s)) => s,
            };
        let mut imap = Imap {
            session,
            server,
            capabilities: HashSet::new(),
        };
        let caps = deadline("CAPABILITY", &imap.server, imap.session.capabilities()).await?;
        imap.capabilities = caps
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                async_imap::types::Capability::Auth(a) => {
                    format!("AUTH={}", a.to_ascii_uppercase())
                }
                async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect();
        Ok(imap)
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities.contains(&cap.to_ascii_uppercase())
    }

    /// Every selectable folder (LIST "" "*").
    pub async fn folders(&mut self) -> Result<Vec<String>> {
        let server = self.server.clone();
        let names = deadline("LIST", &server, async {
            let stream = self.session.list(Some(""), Some("*")).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(names
            .iter()
            .filter(|n| {
                !n.attributes()
                    .iter()
                    .any(|a| matches!(a, async_imap::types::NameAttribute::NoSelect))
            })
            .map(|n| n.name().to_string())
            .collect())
    }

    pub async fn select(&mut self, folder: &str) -> Result<Selected> {
        let server = self.server.clone();
        let mb = match tokio::time::timeout(COMMAND_DEADLINE, self.session.select(folder)).await {
            Err(_) => {
                return Err(RunError::Imap(format!(
                    "IMAP server {server} did not answer SELECT {folder:?}"
                )));
            }
            Ok(Err(async_imap::error::Error::No(msg))) => {
                return Err(RunError::Folder(format!(
                    "folder {folder:?} cannot be opened on IMAP server {server}: {}",
                    msg.trim()
                )));
            }
            Ok(Err(e)) => return Err(imap_error(&format!("SELECT {folder:?}"), &server, e)),
            Ok(Ok(mb)) => mb,
        };
        let uidvalidity = mb.uid_validity.ok_or_else(|| {
            RunError::Imap(format!(
                "IMAP server {server} gave no UIDVALIDITY for folder {folder:?}"
            ))
        })?;
        Ok(Selected {
            name: folder.to_string(),
            uidvalidity,
            exists: mb.exists,
        })
    }

    /// UID SEARCH, ascending.
    pub async fn uid_search(&mut self, query: &str) -> Result<Vec<u32>> {
        let server = self.server.clone();
        let set = deadline(
            &format!("UID SEARCH {query}"),
            &server,
            self.session.uid_search(query),
        )
        .await?;
        let mut uids: Vec<u32> = set.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The full messages (BODY.PEEK[]: \Seen is not set), flags, INTERNALDATE, size.
    pub async fn fetch_messages(&mut self, uids: &[u32]) -> Result<Vec<Fetched>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let server = self.server.clone();
        let set = uid_set(uids);
        let fetches: Vec<Fetch> = deadline("UID FETCH", &server, async {
            let stream = self
                .session
                .uid_fetch(&set, "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
                .await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let mut out = Vec::with_capacity(fetches.len());
        for f in &fetches {
            let Some(uid) = f.uid else { continue };
            // Unsolicited FETCH responses (flag changes) carry no body.
            let (true, Some(body)) = (wanted.contains(&uid), f.body()) else {
                continue;
            };
            out.push(Fetched {
                uid,
                raw: body.to_vec(),
                flags: f.flags().filter_map(|fl| flag_atom(&fl)).collect(),
                internal_date: f.internal_date(),
                size: f.size,
            });
        }
        out.sort_by_key(|f| f.uid);
        out.dedup_by_key(|f| f.uid);
        Ok(out)
    }

    /// One header field of each message (BODY.PEEK[HEADER.FIELDS (field)]).
    pub async fn fetch_headers_fields(
        &mut self,
        uids: &[u32],
        field: &str,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let server = self.server.clone();
        let set = uid_set(uids);
        let query = format!("(UID BODY.PEEK[HEADER.FIELDS ({field})])");
        let fetches: Vec<Fetch> = deadline("UID FETCH (header fields)", &server, async {
            let stream = self.session.uid_fetch(&set, &query).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.header()?.to_vec())))
            .collect())
    }

    /// Flags, INTERNALDATE and size of each message (no body: `raw` is empty).
    pub async fn fetch_meta(&mut self, uids: &[u32]) -> Result<Vec<Fetched>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let server = self.server.clone();
        let set = uid_set(uids);
        let fetches: Vec<Fetch> = deadline("UID FETCH (flags)", &server, async {
            let stream = self
                .session
                .uid_fetch(&set, "(UID FLAGS INTERNALDATE RFC822.SIZE)")
                .await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        let mut out: Vec<Fetched> = fetches
            .iter()
            .filter_map(|f| {
                let uid = f.uid.filter(|u| wanted.contains(u))?;
                Some(Fetched {
                    uid,
                    raw: Vec::new(),
                    flags: f.flags().filter_map(|fl| flag_atom(&fl)).collect(),
                    internal_date: f.internal_date(),
                    size: f.size,
                })
            })
            .collect();
        out.sort_by_key(|f| f.uid);
        out.dedup_by_key(|f| f.uid);
        Ok(out)
    }

    /// APPENDs a message with flags and an INTERNALDATE.
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[String],
        internal_date: Option<&DateTime<FixedOffset>>,
        raw: &[u8],
    ) -> Result<()> {
        let server = self.server.clone();
        let flags = format!("({})", flags.join(" "));
        let date = internal_date.map(imap_datetime);
        deadline(
            &format!("APPEND to {folder:?}"),
            &server,
            self.session
                .append(folder, Some(&flags), date.as_deref(), raw),
        )
        .await
    }

    /// APPENDs several messages in one command (MULTIAPPEND, RFC 3502, with
    /// LITERAL+ literals): all or none are added, and the server commits them
    /// together — Dovecot takes ~2.5 ms per message this way against ~13 ms for
    /// one APPEND each. Falls back to one APPEND per message without them.
    pub async fn append_many(&mut self, folder: &str, msgs: &[Appendable]) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        if !(self.has_capability("MULTIAPPEND") && self.has_capability("LITERAL+")) {
            for m in msgs {
                self.append(folder, &m.flags, m.internal_date.as_ref(), &m.raw)
                    .await?;
            }
            return Ok(());
        }
        let part = |m: &Appendable| {
            let date = m
                .internal_date
                .as_ref()
                .map(|d| format!(" {}", imap_datetime(d)))
                .unwrap_or_default();
            format!("({}){date} {{{}+}}", m.flags.join(" "), m.raw.len())
        };
        let first = format!("APPEND {} {}", quote(folder)?, part(&msgs[0]));
        let mut rest: Vec<u8> = Vec::with_capacity(msgs.iter().map(|m| m.raw.len() + 64).sum());
        rest.extend_from_slice(&msgs[0].raw);
        for m in &msgs[1..] {
            rest.push(b' ');
            rest.extend_from_slice(part(m).as_bytes());
            rest.extend_from_slice(b"\r\n");
            rest.extend_from_slice(&m.raw);
        }
        rest.extend_from_slice(b"\r\n");
        let server = self.server.clone();
        let what = format!("APPEND of {} stubs to {folder:?}", msgs.len());
        let session = &mut self.session;
        let outcome = tokio::time::timeout(COMMAND_DEADLINE, async {
            use tokio::io::AsyncWriteExt;
            let id = session.run_command(&first).await?;
            let w = session.get_mut();
            w.write_all(&rest).await?;
            w.flush().await?;
            loop {
                let Some(resp) = session.read_response().await? else {
                    return Err(async_imap::error::Error::ConnectionLost);
                };
                if let async_imap::imap_proto::Response::Done {
                    tag,
                    status,
                    outcome,
                } = resp.parsed()
                    && *tag == id
                {
                    let info = outcome.information.as_deref().unwrap_or("").to_string();
                    return match status {
                        async_imap::imap_proto::Status::Ok => Ok(()),
                        async_imap::imap_proto::Status::Bad => {
                            Err(async_imap::error::Error::Bad(info))
                        }
                        _ => Err(async_imap::error::Error::No(info)),
                    };
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(imap_error(&what, &server, e)),
            Err(_) => Err(RunError::Imap(format!(
                "IMAP server {server} did not answer {what} within {} s",
                COMMAND_DEADLINE.as_secs()
            ))),
        }
    }

    /// Marks exactly these UIDs \Deleted and expunges exactly them (UIDPLUS
    /// UID EXPUNGE): nothing else in the folder is touched. Refuses without UIDPLUS.
    pub async fn expunge_uids(&mut self, uids: &[u32]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        if !self.has_capability("UIDPLUS") {
            return Err(RunError::Imap(format!(
                "IMAP server {} does not offer UIDPLUS: refusing to EXPUNGE (it would remove every \\Deleted message of the folder)",
                self.server
            )));
        }
        let server = self.server.clone();
        let set = uid_set(uids);
        deadline("UID STORE +FLAGS (\\Deleted)", &server, async {
            let stream = self
                .session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        deadline("UID EXPUNGE", &server, async {
            let stream = self.session.uid_expunge(&set).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(())
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ImapUrl::parse("imap://127.0.0.1:1143").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 1143));
        let u = ImapUrl::parse("imaps://mail.example.org").unwrap();
        assert_eq!((u.tls, u.port), (true, 993));
        assert_eq!(ImapUrl::parse("imap://host/").unwrap().port, 143);
        assert_eq!(ImapUrl::parse("imap://[::1]:99").unwrap().host, "::1");
        assert!(ImapUrl::parse("http://host").is_err());
        assert!(ImapUrl::parse("imap://u@host").is_err());
        assert!(ImapUrl::parse("imap://host:x").is_err());
        assert!(ImapUrl::parse("imap://host:70000").is_err());
        assert!(ImapUrl::parse("imap://host/INBOX").is_err());
        assert!(ImapUrl::parse("imap://host?x=1").is_err());
        assert!(ImapUrl::parse("imap:host").is_err());
        assert!(ImapUrl::parse("imap://").is_err());
        assert!(ImapUrl::parse("mail.example.org").is_err());
        let e = ImapUrl::parse("imap://my host").unwrap_err().to_string();
        assert!(e.contains("use imap://HOST[:PORT]"), "{e}");
        let u = ImapUrl::parse("IMAPS://[2001:db8::1]").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "2001:db8::1", 993));
        assert_eq!(u.to_string(), "imaps://[2001:db8::1]:993");
    }

    #[test]
    fn uid_sets_and_dates() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 10, 7]), "1:3,5,7,9:10");
        assert_eq!(uid_set(&[4]), "4");
        let d = chrono::NaiveDate::from_ymd_opt(2002, 8, 3).unwrap();
        assert_eq!(imap_date(d), "3-Aug-2002");
        let t = DateTime::parse_from_rfc3339("2002-08-03T09:05:01+02:00").unwrap();
        assert_eq!(imap_datetime(&t), "\"03-Aug-2002 09:05:01 +0200\"");
        assert_eq!(quote("a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
    }
}
