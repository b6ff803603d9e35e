//! A private Dovecot for tests (shared/recipes/dovecot.md): config in a temp
//! folder, one loopback port, users from a passwd-file, Maildir storage;
//! stopped (SIGKILL of the master) when dropped. Plus a tiny synchronous IMAP
//! client for seeding and inspecting mailboxes the way a mail client would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The `imaps` port (listening only when started with [`Dovecot::start_tls`]).
    pub tls_port: u16,
    conf: PathBuf,
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run dovecot tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe extern "C" {
        fn getuid() -> u32;
    }
    unsafe { getuid() == 0 }
}

impl Dovecot {
    /// Starts Dovecot with these users (name, password).
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(users, None)
    }

    /// Starts Dovecot that also serves IMAP over TLS (`imaps`) on
    /// [`Dovecot::tls_port`], with this PEM certificate chain and key.
    pub fn start_tls(users: &[(&str, &str)], cert: &Path, key: &Path) -> Dovecot {
        Dovecot::start_with(users, Some((cert, key)))
    }

    fn start_with(users: &[(&str, &str)], tls: Option<(&Path, &Path)>) -> Dovecot {
        assert!(
            Path::new("/usr/sbin/dovecot").exists(),
            "Dovecot is missing: apt-get install -y dovecot-imapd (scripts/setup.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        // Every folder above the mail must be searchable by the mail user.
        let mut p = Some(d);
        while let Some(dir) = p {
            if dir == Path::new("/") {
                break;
            }
            if let Ok(meta) = std::fs::metadata(dir) {
                let mode = meta.permissions().mode();
                if mode & 0o005 != 0o005 {
                    let _ = std::fs::set_permissions(
                        dir,
                        std::fs::Permissions::from_mode(mode | 0o755),
                    );
                }
            }
            p = dir.parent();
        }
        let passwd: String = users
            .iter()
            .map(|(u, pw)| format!("{u}:{{PLAIN}}{pw}::::::\n"))
            .collect();
        std::fs::write(d.join("passwd"), passwd).expect("passwd");
        let port = super::free_port();
        let (login_user, internal_user, internal_group, mail_uid, mail_gid) = if is_root() {
            ("dovenull", "dovecot", "dovecot", "dovecot", "dovecot")
        } else {
            let u = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
            let g = String::from_utf8(Command::new("id").arg("-gn").output().expect("id").stdout)
                .expect("utf8")
                .trim()
                .to_string();
            let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
            (
                leak(u.clone()),
                leak(u.clone()),
                leak(g.clone()),
                leak(u),
                leak(g),
            )
        };
        let ds = d.display();
        let tls_port = super::free_port();
        let (ssl, imaps) = match tls {
            Some((cert, key)) => (
                format!(
                    "yes\nssl_cert = <{}\nssl_key = <{}",
                    cert.display(),
                    key.display()
                ),
                format!("address = 127.0.0.1\n    port = {tls_port}"),
            ),
            None => ("no".to_string(), "port = 0".to_string()),
        };
        let conf = format!(
            r#"instance_name = satchel-test-{port}
base_dir = {ds}/run
state_dir = {ds}/state
log_path = {ds}/dovecot.log
info_log_path = {ds}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{ds}/mail/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {ds}/passwd
}}
userdb {{
  driver = static
  args = home={ds}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service anvil {{
  chroot =
}}
"#
        );
        let conf_path = d.join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("dovecot.conf");
        let dc = Dovecot {
            dir,
            port,
            tls_port,
            conf: conf_path,
        };
        dc.chown_mail();
        dc.launch();
        dc
    }

    fn chown_mail(&self) {
        if is_root() {
            run_ok(
                Command::new("chown")
                    .args(["-R", "dovecot:dovecot"])
                    .arg(self.dir.path().join("mail")),
            );
        }
    }

    fn launch(&self) {
        // Dovecot daemonizes: the daemon keeps whatever stdout/stderr it was
        // given, so hand it a file, never a pipe someone waits on.
        let out = std::fs::File::create(self.dir.path().join("dovecot.out")).expect("out");
        let status = Command::new("/usr/sbin/dovecot")
            .arg("-c")
            .arg(&self.conf)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().expect("out"))
            .stderr(out)
            .status()
            .expect("start dovecot");
        assert!(
            status.success(),
            "dovecot failed to start: {}",
            std::fs::read_to_string(self.dir.path().join("dovecot.out")).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("Dovecot did not listen on {}: {}", self.port, self.log());
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join("run/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs the master: its children go within a fraction of a second and
    /// the port is free at once (recipe).
    pub fn kill(&self) {
        if let Some(pid) = self.master_pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        // An imap process serving a connection outlives its master until its
        // client goes: kill this instance's processes (their titles start with
        // the instance name), so a connection in use drops like a crash.
        for pid in self.instance_pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.dir.path().join("run/master.pid"));
    }

    /// The processes of this instance (process titles `satchel-test-PORT/...`).
    fn instance_pids(&self) -> Vec<u32> {
        let prefix = format!("dovecot-satchel-test-{}/", self.port);
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).starts_with(&prefix) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Starts it again on the same port and mail.
    pub fn restart(&self) {
        self.kill();
        self.launch();
    }

    /// Logs in (retrying the first seconds, while auth is still starting).
    pub fn login(&self, user: &str, password: &str) -> Imap {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Imap::login(self.port, user, password) {
                Ok(i) => return i,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("IMAP login as {user} failed: {e}\n{}", self.log()),
            }
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A message as a mail client sees it.
#[derive(Clone, Debug)]
pub struct Msg {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: String,
    pub raw: Vec<u8>,
}

impl Msg {
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str("\r\n");
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.to_string());
            }
        }
        value
    }
}

/// An untagged response line (literals inlined in it) and its literals.
type Response = (String, Vec<Vec<u8>>);

/// A minimal synchronous IMAP client (LOGIN, SELECT, APPEND, UID FETCH/STORE,
/// UID SEARCH, EXPUNGE) for seeding and inspecting: the tests' own eyes, kept
/// independent of the product's IMAP code.
pub struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
}

impl Imap {
    fn login(port: u16, user: &str, password: &str) -> Result<Imap, String> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let mut imap = Imap {
            r: BufReader::new(s.try_clone().map_err(|e| e.to_string())?),
            w: s,
            tag: 0,
        };
        let mut greet = String::new();
        imap.r.read_line(&mut greet).map_err(|e| e.to_string())?;
        if !greet.starts_with("* OK") {
            return Err(format!("greeting: {greet}"));
        }
        imap.cmd(&format!("LOGIN {} {}", q(user), q(password)))?;
        Ok(imap)
    }

    /// Sends a command; returns its untagged lines with literals inline.
    fn cmd(&mut self, command: &str) -> Result<Vec<Response>, String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.w, "{tag} {command}\r\n").map_err(|e| e.to_string())?;
        self.responses(&tag)
    }

    fn responses(&mut self, tag: &str) -> Result<Vec<Response>, String> {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            let mut literals = Vec::new();
            let mut full = line.clone();
            // A line ending in {N} is followed by N bytes and the rest of the line.
            while let Some(n) = literal_len(&full) {
                let mut buf = vec![0; n];
                self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
                literals.push(buf);
                let mut rest = String::new();
                self.r.read_line(&mut rest).map_err(|e| e.to_string())?;
                full = rest.clone();
                line.push_str(&rest);
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                if rest.starts_with("OK") {
                    return Ok(out);
                }
                return Err(rest.trim().to_string());
            }
            out.push((line, literals));
        }
    }

    pub fn select(&mut self, folder: &str) -> u32 {
        let lines = self.cmd(&format!("SELECT {}", q(folder))).expect("SELECT");
        lines
            .iter()
            .find_map(|(l, _)| {
                let i = l.find("UIDVALIDITY ")?;
                l[i + 12..].split(']').next()?.trim().parse().ok()
            })
            .expect("UIDVALIDITY")
    }

    pub fn create(&mut self, folder: &str) {
        self.cmd(&format!("CREATE {}", q(folder))).expect("CREATE");
    }

    pub fn delete_folder(&mut self, folder: &str) {
        self.cmd(&format!("DELETE {}", q(folder))).expect("DELETE");
    }

    pub fn rename_folder(&mut self, from: &str, to: &str) {
        self.cmd(&format!("RENAME {} {}", q(from), q(to)))
            .expect("RENAME");
    }

    /// APPENDs with flags and an INTERNALDATE like "01-Jan-2020 10:00:00 +0000".
    pub fn append(&mut self, folder: &str, flags: &[&str], date: &str, raw: &[u8]) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(
            self.w,
            "{tag} APPEND {} ({}) \"{date}\" {{{}+}}\r\n",
            q(folder),
            flags.join(" "),
            raw.len()
        )
        .expect("write");
        self.w.write_all(raw).expect("write");
        self.w.write_all(b"\r\n").expect("write");
        self.responses(&tag).expect("APPEND");
    }

    pub fn search(&mut self, criteria: &str) -> Vec<u32> {
        let lines = self.cmd(&format!("UID SEARCH {criteria}")).expect("SEARCH");
        let mut uids: Vec<u32> = lines
            .iter()
            .filter_map(|(l, _)| l.strip_prefix("* SEARCH"))
            .flat_map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        uids.sort_unstable();
        uids
    }

    /// Every message of the selected folder.
    pub fn messages(&mut self) -> Vec<Msg> {
        let lines = self
            .cmd("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])")
            .expect("FETCH");
        let mut out = Vec::new();
        for (line, lits) in lines {
            if !line.contains(" FETCH ") || lits.is_empty() {
                continue;
            }
            let uid = after(&line, "UID ")
                .and_then(|s| s.split([' ', ')']).next()?.parse().ok())
                .expect("UID");
            let flags = after(&line, "FLAGS (")
                .and_then(|s| s.split(')').next())
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            let internal_date = after(&line, "INTERNALDATE \"")
                .and_then(|s| s.split('"').next())
                .unwrap_or("")
                .to_string();
            out.push(Msg {
                uid,
                flags,
                internal_date,
                raw: lits.into_iter().next().expect("body"),
            });
        }
        out.sort_by_key(|m| m.uid);
        out
    }

    pub fn logout(mut self) {
        let _ = self.cmd("LOGOUT");
    }
}

fn after<'a>(s: &'a str, pat: &str) -> Option<&'a str> {
    s.find(pat).map(|i| &s[i + pat.len()..])
}

fn literal_len(line: &str) -> Option<usize> {
    let t = line.trim_end_matches(['\r', '\n']);
    let t = t.strip_suffix('}')?;
    let open = t.rfind('{')?;
    t[open + 1..].trim_end_matches('+').parse().ok()
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
