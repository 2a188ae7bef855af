//! Headless Chromium (Debian's `chromium`, installed by `make deps`) with its DevTools port on
//! loopback, and the one page a test drives through it: open a URL, evaluate JavaScript, wait
//! for a condition, click and type as a person would, take screenshots.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::cdp::{Cdp, base64_decode, http_get};

/// How long a page may take to reach a state before the test fails (a guard against a hang,
/// generous for a loaded 2-core machine; the waits return as soon as the state is reached).
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

const WIDTH: u32 = 1360;
const HEIGHT: u32 = 1000;

/// A running headless Chromium and its first page.
pub(crate) struct Chromium {
    page: Cdp,
    browser: Browser,
}

/// The browser's process tree (stopped when dropped) and its profile and log.
struct Browser {
    child: Child,
    dir: TempDir,
}

/// The browser to run: `PHOENIX_CHROMIUM`, or `chromium` on the PATH.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PHOENIX_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file())
}

impl Chromium {
    /// Starts Chromium headless on a free loopback port and connects to its page.
    pub(crate) fn start() -> Chromium {
        let bin = binary().unwrap_or_else(|| {
            panic!("Chromium is not installed, and the page's tests need it: run `make deps` (scripts/install-deps.sh installs Debian's `chromium`), or point PHOENIX_CHROMIUM at a Chromium binary")
        });
        let dir = tempfile::Builder::new().prefix("phoenix-chromium-").tempdir().expect("a temporary directory");
        let profile = dir.path().join("profile");
        let log = std::fs::File::create(dir.path().join("chromium.log")).expect("a log file");
        let child = Command::new(&bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--mute-audio",
                "--hide-scrollbars",
                &format!("--window-size={WIDTH},{HEIGHT}"),
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start ({e}): run `make deps`", bin.display()));
        let mut browser = Browser { child, dir };
        let port = browser.devtools_port(&profile);
        let ws = browser.page_socket(port);
        let page = Cdp::connect(&ws).unwrap_or_else(|e| browser.fail(&format!("cannot connect to the page's DevTools socket {ws}: {e}")));
        let mut browser = Chromium { page, browser };
        browser.call("Runtime.enable", json!({}));
        browser.call("Page.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    /// A DevTools command; panics on an error.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        match self.page.call(method, params) {
            Ok(v) => v,
            Err(e) => self.browser.fail(&format!("DevTools command failed: {e}")),
        }
    }

    /// Navigates and waits for the document to load.
    pub(crate) fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_until(&format!("{url} to load"), "document.readyState === 'complete'");
    }

    /// The value of a JavaScript expression (promises awaited); panics if it throws.
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }));
        if let Some(e) = r.get("exceptionDetails") {
            panic!("`{expression}` threw: {}", e["exception"]["description"].as_str().or(e["text"].as_str()).unwrap_or("?"));
        }
        r["result"]["value"].clone()
    }

    /// Polls `condition` (JavaScript) until it is true; on a timeout, fails with what the
    /// page shows.
    pub(crate) fn wait_until(&mut self, what: &str, condition: &str) {
        let start = Instant::now();
        loop {
            if self.eval(&format!("!!({condition})")) == json!(true) {
                return;
            }
            if start.elapsed() > PATIENCE {
                let text = self.eval("document.body ? document.body.innerText : ''");
                let nodes =
                    self.eval("[...document.querySelectorAll('[data-step]')].map(n => n.dataset.step + '=' + n.dataset.status).join(' ')");
                panic!("waited {PATIENCE:?} for {what}\n--- DAG: {nodes}\n--- the page's text:\n{}", text.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `selector` picks with the mouse: pressed and released at the centre
    /// of its box, after checking that nothing covers it there.
    pub(crate) fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("a string");
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null;
                e.scrollIntoView({{ block: 'center', inline: 'center' }});
                const r = e.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                return {{ x, y, hit: !!hit && (hit === e || e.contains(hit)), disabled: !!e.disabled }}; }})()"
        ));
        assert!(at.is_object(), "nothing on the page matches {selector}");
        assert_eq!(at["hit"], true, "{selector} is covered by another element at its centre: {at}");
        assert_eq!(at["disabled"], false, "{selector} is disabled");
        let (x, y) = (at["x"].as_f64().expect("x"), at["y"].as_f64().expect("y"));
        self.call("Input.dispatchMouseEvent", json!({ "type": "mouseMoved", "x": x, "y": y }));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call("Input.dispatchMouseEvent", json!({ "type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1 }));
        }
    }

    /// Clicks into a field, selects what it holds and types `text` over it, as a person would.
    pub(crate) fn fill(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.eval("document.activeElement.select?.()");
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// A PNG of the whole page, written to `path`.
    pub(crate) fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshots' directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Uncaught JavaScript exceptions the page threw so far.
    pub(crate) fn exceptions(&self) -> &[String] {
        &self.page.exceptions
    }
}

impl Browser {
    fn fail(&self, what: &str) -> ! {
        let log = std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default();
        let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!("{what}\n--- chromium's log (last lines):\n{tail}")
    }

    /// The DevTools port, from the DevToolsActivePort file Chromium writes in its profile.
    fn devtools_port(&mut self, profile: &Path) -> u16 {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(profile.join("DevToolsActivePort")).unwrap_or_default();
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("chromium exited ({status}) before opening its DevTools port"));
            }
            if start.elapsed() > PATIENCE {
                self.fail("chromium did not open its DevTools port");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The WebSocket URL of the first page target.
    fn page_socket(&self, port: u16) -> String {
        let start = Instant::now();
        loop {
            let listed = http_get(&format!("127.0.0.1:{port}"), "/json/list");
            if let Ok(body) = &listed {
                let targets: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                let page = targets.as_array().into_iter().flatten().find(|t| t["type"] == "page");
                if let Some(url) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                    return url.to_string();
                }
            }
            if start.elapsed() > PATIENCE {
                self.fail(&format!("chromium lists no page on port {port}: {listed:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.page.close();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium's helpers (zygote, renderers, GPU) go with it.
        crate::process::crash_tree(self.child.id());
        let _ = self.child.wait();
    }
}

/// Where the page's screenshots go: `test-artifacts/page/` in the target directory
/// (`target/`, or `CARGO_TARGET_DIR`), found from this test binary's own path
/// (`TARGET/debug/deps/integration-…`).
pub(crate) fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe.ancestors().nth(3).map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    target.join("test-artifacts").join("page")
}
