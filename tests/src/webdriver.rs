//! A small W3C WebDriver client for the web console's browser tests:
//! `chromedriver` (Debian's `chromium-driver`) started on a free port,
//! one headless Chromium session, and the few commands the tests use
//! (navigate, find, click, type, read through a script, screenshot).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

/// The key WebDriver names an element reference with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian installs the browser and its driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser and its driver are installed.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// One browser session; the driver is killed when it is dropped.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile
    /// (the flags Chromium needs to run as root in a container, and none
    /// of its own network traffic).
    pub async fn start() -> anyhow::Result<Browser> {
        let port = crate::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let profile = tempfile::tempdir()?;
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on {base}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1400,1000".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let v = browser
            .call("POST", &format!("{base}/session"), caps)
            .await?;
        let id = v["sessionId"].as_str().context("no session id")?.to_owned();
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    async fn call(&self, method: &str, url: &str, body: Value) -> anyhow::Result<Value> {
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.context("webdriver answer")?;
        if !status.is_success() {
            bail!("{method} {url}: {status} {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(method, &format!("{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", json!({"url": url}))
            .await
            .map(drop)
    }

    /// The first element `css` matches, waiting for it up to `within`.
    pub async fn find(&self, css: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .cmd(
                    "POST",
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            match found {
                Ok(v) => {
                    return v[ELEMENT]
                        .as_str()
                        .map(str::to_owned)
                        .context("element reference");
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("no element matches {css}")));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let e = self.find(css, Duration::from_secs(10)).await?;
        self.cmd("POST", &format!("/element/{e}/click"), json!({}))
            .await
            .map(drop)
    }

    /// Clears the field `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.find(css, Duration::from_secs(10)).await?;
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}))
            .await?;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub async fn eval(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Evaluates `script` until `done` holds of its value, up to `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(script, json!([])).await?;
            if done(&v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("{what}: not within {within:?}; last {v}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a PNG of the page as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let v = self.cmd("GET", "/screenshot", Value::Null).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().context("screenshot data")?)?;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Ends the session (the driver goes with the value).
    pub async fn quit(self) {
        let _ = self.cmd("DELETE", "", Value::Null).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
