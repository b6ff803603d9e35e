//! Headless Chromium driven over the DevTools protocol, through the pipe
//! transport (`--remote-debugging-pipe`: JSON messages ended by NUL on file
//! descriptors 3 and 4), so no WebDriver, no WebSocket and no extra crate.
//! Debian's `/usr/bin/chromium` (scripts/setup.sh installs it).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    to_chrome: ChildStdin,
    from_chrome: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
    log: PathBuf,
    shots: PathBuf,
}

fn chromium() -> PathBuf {
    std::env::var_os("SATCHEL_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Where the tests write their screenshots: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

impl Browser {
    pub fn launch() -> Browser {
        let bin = chromium();
        assert!(
            bin.exists(),
            "headless chromium is missing at {}: run scripts/setup.sh (apt-get install chromium)",
            bin.display()
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().with_extension("chromium.log");
        let logf = std::fs::File::create(&log).expect("chromium log");
        // The shell hands our stdin/stdout pipes to chromium as fds 3 and 4.
        let script = "exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>&2";
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .expect("spawn chromium");
        let mut child = child;
        let to_chrome = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to_chrome,
            from_chrome: rx,
            next_id: 0,
            session: String::new(),
            _profile: profile,
            log,
            shots: screenshot_dir(),
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        b.cmd("Page.enable", json!({}));
        b.cmd(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    fn call(&mut self, session: Option<String>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to_chrome
            .write_all(&bytes)
            .and_then(|_| self.to_chrome.flush())
            .unwrap_or_else(|e| panic!("chromium pipe closed ({e}); log:\n{}", self.log_text()));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_chrome.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    if let Some(e) = v.get("error") {
                        panic!("DevTools {method} failed: {e}");
                    }
                    return v["result"].clone();
                }
                Ok(_) => continue, // an event
                Err(RecvTimeoutError::Timeout) => {
                    panic!("DevTools {method}: no answer in {TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("chromium went away; log:\n{}", self.log_text())
                }
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A DevTools command on the page.
    pub fn cmd(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(s), method, params)
    }

    /// Evaluates JavaScript in the page (DevTools evaluation, not page script:
    /// the page's Content-Security-Policy stays in force for the page itself).
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.cmd(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("JavaScript failed: {js}\n{e}");
        }
        r["result"]["value"].clone()
    }

    pub fn eval_str(&mut self, js: &str) -> String {
        match self.eval(js) {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Runs `action` (which leaves the page) and waits for the next page to load.
    fn leave_with(&mut self, action: impl FnOnce(&mut Self)) {
        self.eval("window.__satchelOld = true");
        action(self);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let ready = self.cmd(
                "Runtime.evaluate",
                json!({"expression":
                    "typeof window.__satchelOld === 'undefined' && document.readyState === 'complete'",
                    "returnByValue": true}),
            );
            if ready["result"]["value"] == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "the page did not load");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn goto(&mut self, url: &str) {
        let url = url.to_string();
        self.leave_with(|b| {
            let r = b.cmd("Page.navigate", json!({"url": url}));
            if let Some(e) = r.get("errorText") {
                panic!("navigating to {url}: {e}");
            }
        });
    }

    /// Sets a form field (text input or select).
    pub fn fill(&mut self, selector: &str, value: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {0}); e.value = {}; return true; }})()",
            json!(selector),
            json!(value)
        );
        self.eval(&js);
    }

    pub fn check(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {0}); e.checked = true; return true; }})()",
            json!(selector)
        );
        self.eval(&js);
    }

    /// Clicks what leaves the page (a submit button or a link) and waits.
    pub fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {0}); e.click(); return true; }})()",
            json!(selector)
        );
        self.leave_with(|b| {
            b.eval(&js);
        });
    }

    /// Submits a form with `form.submit()`, skipping the browser's own
    /// validation (to see what the server does with what a page would refuse).
    pub fn submit_form(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no ' + {0}); e.submit(); return true; }})()",
            json!(selector)
        );
        self.leave_with(|b| {
            b.eval(&js);
        });
    }

    /// The text of the first element matching `selector` ("" if none).
    pub fn text(&mut self, selector: &str) -> String {
        self.eval_str(&format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.textContent : ''; }})()",
            json!(selector)
        ))
    }

    pub fn exists(&mut self, selector: &str) -> bool {
        self.eval(&format!(
            "document.querySelector({}) !== null",
            json!(selector)
        )) == Value::Bool(true)
    }

    pub fn url(&mut self) -> String {
        self.eval_str("location.href")
    }

    pub fn title(&mut self) -> String {
        self.eval_str("document.title")
    }

    pub fn body_text(&mut self) -> String {
        self.eval_str("document.body ? document.body.innerText : ''")
    }

    /// The value of a cookie of the current page (HttpOnly ones included).
    pub fn cookie(&mut self, name: &str) -> Option<String> {
        let r = self.cmd("Network.getCookies", json!({}));
        r["cookies"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["value"].as_str().unwrap_or_default().to_string())
    }

    /// The full cookie record (to check HttpOnly, SameSite, Path).
    pub fn cookie_record(&mut self, name: &str) -> Option<Value> {
        let r = self.cmd("Network.getCookies", json!({}));
        r["cookies"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    }

    /// Writes a PNG of the page to `target/screenshots/{name}.png`.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let height = self
            .eval("Math.min(Math.max(document.documentElement.scrollHeight, 600), 4000)")
            .as_f64()
            .unwrap_or(1000.0);
        let r = self.cmd(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}),
        );
        let png = base64_decode(r["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
