//! Boots through any Nova-compatible API over HTTP, as a client outside
//! the system sees it: a Keystone token (or noauth2's `user:project`),
//! `POST /servers`, then `GET /servers/{id}` every few milliseconds until
//! the server is ACTIVE. The same client measures Novalog and a real Nova
//! (`novalog-bench --url`), so the two figures compare.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Keystone v3 password authentication, project-scoped.
    Keystone {
        auth_url: String,
        username: String,
        password: String,
        project: String,
    },
    /// Nova's `noauth2`: the token is `user:project`.
    NoAuth { token: String },
}

/// What to boot and how hard.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The compute endpoint, e.g. `http://127.0.0.1:8774/v2.1`.
    pub compute_url: String,
    pub auth: Auth,
    /// A flavor id; the one with the least RAM when absent.
    pub flavor: Option<String>,
    /// An image id; the first active image the compute API's image proxy
    /// lists when absent.
    pub image: Option<String>,
    pub boots: usize,
    pub concurrency: usize,
    /// Between two looks at a server being built.
    pub poll: Duration,
    /// Delete each server once it is ACTIVE (a real Nova's quota and
    /// capacity are small).
    pub delete: bool,
}

pub struct HttpRun {
    pub latencies_ms: Vec<f64>,
    pub wall: Duration,
    pub polls: usize,
}

impl HttpRun {
    pub fn per_second(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64()
    }
}

/// A project-scoped token from Keystone v3.
async fn keystone_token(
    http: &reqwest::Client,
    auth_url: &str,
    username: &str,
    password: &str,
    project: &str,
) -> anyhow::Result<String> {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
    }});
    let r = http
        .post(format!("{}/auth/tokens", auth_url.trim_end_matches('/')))
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let token = r
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match token {
        Some(t) if status.is_success() => Ok(t),
        _ => bail!("keystone: {status} {}", r.text().await.unwrap_or_default()),
    }
}

/// The token every request carries.
pub async fn token(http: &reqwest::Client, auth: &Auth) -> anyhow::Result<String> {
    match auth {
        Auth::NoAuth { token } => Ok(token.clone()),
        Auth::Keystone {
            auth_url,
            username,
            password,
            project,
        } => keystone_token(http, auth_url, username, password, project).await,
    }
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let r = http
        .get(url)
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", "compute 2.1")
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}

/// The plan's flavor and image, or the smallest flavor and the first
/// active image.
async fn pick(
    http: &reqwest::Client,
    plan: &Plan,
    token: &str,
) -> anyhow::Result<(String, String)> {
    let base = plan.compute_url.trim_end_matches('/');
    let flavor = match &plan.flavor {
        Some(f) => f.clone(),
        None => {
            let body = get(http, &format!("{base}/flavors/detail"), token).await?;
            body["flavors"]
                .as_array()
                .context("flavors")?
                .iter()
                .min_by_key(|f| f["ram"].as_i64().unwrap_or(i64::MAX))
                .and_then(|f| f["id"].as_str())
                .context("no flavor")?
                .to_owned()
        }
    };
    let image = match &plan.image {
        Some(i) => i.clone(),
        None => {
            let body = get(http, &format!("{base}/images/detail"), token).await?;
            body["images"]
                .as_array()
                .context("images")?
                .iter()
                .find(|i| i["status"] == "ACTIVE")
                .and_then(|i| i["id"].as_str())
                .context("no active image")?
                .to_owned()
        }
    };
    Ok((flavor, image))
}

/// One boot: its latency from the POST's start to ACTIVE seen, and how
/// many times the server was looked at.
async fn boot(
    http: &reqwest::Client,
    plan: &Plan,
    token: &str,
    flavor: &str,
    image: &str,
    name: String,
) -> anyhow::Result<(f64, usize)> {
    let base = plan.compute_url.trim_end_matches('/');
    let t0 = Instant::now();
    let r = http
        .post(format!("{base}/servers"))
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", "compute 2.37")
        .json(&json!({"server": {"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"}}))
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    if status.as_u16() != 202 {
        bail!("create: {status} {body}");
    }
    let id = body["server"]["id"].as_str().context("id")?.to_owned();
    let mut polls = 0;
    let ms = loop {
        polls += 1;
        let server = get(http, &format!("{base}/servers/{id}"), token).await?;
        match server["server"]["status"].as_str() {
            Some("ACTIVE") => break t0.elapsed().as_secs_f64() * 1000.0,
            Some("ERROR") => bail!("server {id} went to ERROR: {server}"),
            _ => {}
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "server {id} not ACTIVE after 600 s"
        );
        tokio::time::sleep(plan.poll).await;
    };
    if plan.delete {
        let r = http
            .delete(format!("{base}/servers/{id}"))
            .header("X-Auth-Token", token)
            .send()
            .await?;
        if r.status().as_u16() != 204 {
            bail!("delete {id}: {}", r.status());
        }
    }
    Ok((ms, polls))
}

/// `plan.boots` boots, `plan.concurrency` at a time.
pub async fn run(plan: &Plan) -> anyhow::Result<HttpRun> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .build()?;
    let token = token(&http, &plan.auth).await?;
    let (flavor, image) = pick(&http, plan, &token).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..plan.concurrency).map(|_| {
        let (http, next, token, flavor, image) = (
            http.clone(),
            next.clone(),
            token.clone(),
            flavor.clone(),
            image.clone(),
        );
        async move {
            let mut out = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= plan.boots {
                    return anyhow::Ok(out);
                }
                out.push(boot(&http, plan, &token, &flavor, &image, format!("http-{n}")).await?);
            }
        }
    });
    let results: Vec<(f64, usize)> = futures::future::try_join_all(workers)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(HttpRun {
        wall: started.elapsed(),
        polls: results.iter().map(|r| r.1).sum(),
        latencies_ms: results.into_iter().map(|r| r.0).collect(),
    })
}
