//! A private OpenLDAP directory for tests: Debian's `slapd` (installed by
//! scripts/setup.sh) started from a small slapd.conf with the mdb backend
//! in a temporary folder, on a free loopback port, loaded with `ldapadd`
//! (ldap-utils). The system's own slapd, if any, is never used.
//!
//! The ppolicy overlay with a default policy (`pwdLockout: TRUE`) lets a
//! test disable an account the way directories do: `pwdAccountLockedTime:
//! 000001010000Z` (locked until an administrator unlocks it), after which
//! slapd refuses every bind as that entry.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const ROOT_DN: &str = "cn=root,dc=example,dc=com";
const ROOT_PW: &str = "root-secret-1";
/// The read-only account the service searches as.
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const READER_PW: &str = "reader-secret-1";

pub struct Slapd {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    dir: tempfile::TempDir,
}

/// The DN of user `uid`.
pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

/// The DN of group `cn`.
pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{SUFFIX}")
}

impl Slapd {
    /// A running directory with the suffix, `ou=people`, `ou=groups`, the
    /// password policy and the reader account.
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("db")).expect("mkdir db");
        std::fs::write(dir.path().join("slapd.conf"), conf(dir.path())).expect("slapd.conf");
        let mut slapd = Slapd {
            child: None,
            port: 0,
            url: String::new(),
            dir,
        };
        slapd.run();
        slapd.add(&base_entries());
        slapd
    }

    /// Starts slapd on a free port (again after [`Slapd::stop`], on the same
    /// data); another process may take the port first, then another is tried.
    fn run(&mut self) {
        for _ in 0..5 {
            let port = super::free_port();
            let log = std::fs::File::create(self.dir.path().join("slapd.log")).expect("log");
            let child = Command::new("/usr/sbin/slapd")
                .arg("-f")
                .arg(self.dir.path().join("slapd.conf"))
                .args(["-h", &format!("ldap://127.0.0.1:{port}/"), "-d", "0"])
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start /usr/sbin/slapd (scripts/setup.sh installs it)");
            self.child = Some(child);
            self.port = port;
            self.url = format!("ldap://127.0.0.1:{port}");
            if self.wait_ready() {
                return;
            }
        }
        panic!("slapd did not start in 5 tries; log:\n{}", self.log());
    }

    /// True once slapd answers a root bind; false if it exited (its port
    /// was taken).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && c.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return false;
            }
            let who = Command::new("ldapwhoami")
                .args(["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW])
                .output()
                .expect("run ldapwhoami (ldap-utils)");
            if who.status.success() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("slapd did not answer within 30 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Adds LDIF entries as the directory's root.
    pub fn add(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies an LDIF change as the directory's root.
    pub fn modify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run an ldap-utils tool");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write LDIF");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A person `uid` with this password.
    pub fn add_user(&self, uid: &str, password: &str) {
        self.add(&format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {password}\n",
            user_dn(uid)
        ));
    }

    /// Locks `uid`'s account for good (ppolicy): slapd refuses its binds.
    pub fn lock(&self, uid: &str) {
        self.modify(&format!(
            "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
            user_dn(uid)
        ));
    }

    /// A groupOfNames `cn` with these users as members.
    pub fn add_group(&self, cn: &str, members: &[&str]) {
        let mut ldif = format!(
            "dn: {}\nobjectClass: groupOfNames\ncn: {cn}\n",
            group_dn(cn)
        );
        for m in members {
            ldif.push_str(&format!("member: {}\n", user_dn(m)));
        }
        self.add(&ldif);
    }

    /// Stops slapd (the directory becomes unreachable).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn conf(dir: &Path) -> String {
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {dir}/slapd.pid
database mdb
maxsize 10485760
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PW}
directory {dir}/db
overlay ppolicy
ppolicy_default \"cn=default,ou=policies,{SUFFIX}\"
",
        dir = dir.display()
    )
}

fn base_entries() -> String {
    format!(
        "dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{SUFFIX}
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE

dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: {READER_PW}
"
    )
}
