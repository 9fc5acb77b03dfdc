//! Usage and bills: where the billing service's intervals come from, and
//! what the usage routes (`os-simple-tenant-usage`, `/billing/v1`) read
//! off them.
//!
//! The API authenticates and applies policy; billing answers the data.
//! [`UsageSource`] is that one question ("every interval of the servers
//! with time in this window"), answered in process by the all-in-one's
//! [`Ledger`] or, with the services in their own processes, by
//! novalog-billing's internal listener ([`RemoteUsage`], `[billing]
//! endpoint`). Both paths share every handler above it. Rating happens
//! here, with this process's `[billing]` price table: one configuration
//! file serves every service.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use novalog_billing::rate::sum_lines;
use novalog_billing::read::{IntervalsReply, ProjectsReply};
use novalog_billing::service::Ledger;
use novalog_billing::{Interval, LineUsage, Period};

use crate::error::ApiError;

/// Why usage could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The billing service did not answer (in time, or sensibly).
    #[error("The billing service is unavailable: {0}")]
    Unavailable(String),
}

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

/// The read side of the billing service.
#[async_trait]
pub trait UsageSource: Send + Sync {
    /// The whole history of every server (of `project`, or of every
    /// project) with any time in `period`.
    async fn servers_in(
        &self,
        project: Option<&str>,
        period: Period,
    ) -> Result<Vec<Interval>, UsageError>;

    /// Every project with any usage, sorted.
    async fn projects(&self) -> Result<Vec<String>, UsageError>;

    /// `project`'s usage in `period` by bill line, in line order (open
    /// intervals running until `now_ms`): what its bill prices. By
    /// default summed from [`UsageSource::servers_in`].
    async fn line_usage(
        &self,
        project: &str,
        period: Period,
        now_ms: i64,
    ) -> Result<Vec<LineUsage>, UsageError> {
        let intervals = self.servers_in(Some(project), period).await?;
        Ok(sum_lines(&intervals, period, now_ms))
    }
}

#[async_trait]
impl UsageSource for Ledger {
    async fn servers_in(
        &self,
        project: Option<&str>,
        period: Period,
    ) -> Result<Vec<Interval>, UsageError> {
        Ok(Ledger::servers_in(
            self,
            project,
            period.start_ms,
            period.end_ms,
        ))
    }

    async fn projects(&self) -> Result<Vec<String>, UsageError> {
        Ok(Ledger::projects(self))
    }

    /// From the ledger's running totals (no interval copied).
    async fn line_usage(
        &self,
        project: &str,
        period: Period,
        now_ms: i64,
    ) -> Result<Vec<LineUsage>, UsageError> {
        Ok(Ledger::line_usage(self, project, period, now_ms))
    }
}

/// novalog-billing's internal listener, over HTTP.
pub struct RemoteUsage {
    client: reqwest::Client,
    /// `[billing] endpoint`, without a trailing slash.
    endpoint: String,
}

/// Longest a read of the billing service may take before the API answers
/// 503: a stopped or hung billing service must not hang usage requests.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

impl RemoteUsage {
    pub fn new(endpoint: &str) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(REMOTE_TIMEOUT)
            .build()
            .unwrap_or_default();
        RemoteUsage {
            client,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, UsageError> {
        let pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let url = format!("{}{path}?{}", self.endpoint, pairs.join("&"));
        let unavailable =
            |e: &dyn std::fmt::Display| UsageError::Unavailable(format!("{url}: {e}"));
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if !resp.status().is_success() {
            return Err(unavailable(&resp.status()));
        }
        // What crosses the process boundary is checked by its types.
        resp.json::<T>().await.map_err(|e| unavailable(&e))
    }
}

#[async_trait]
impl UsageSource for RemoteUsage {
    async fn servers_in(
        &self,
        project: Option<&str>,
        period: Period,
    ) -> Result<Vec<Interval>, UsageError> {
        let mut query = vec![
            ("start_ms", period.start_ms.to_string()),
            ("end_ms", period.end_ms.to_string()),
        ];
        if let Some(p) = project {
            query.push(("project", p.to_owned()));
        }
        let reply: IntervalsReply = self.get("/internal/v1/intervals", &query).await?;
        Ok(reply.intervals)
    }

    async fn projects(&self) -> Result<Vec<String>, UsageError> {
        let reply: ProjectsReply = self.get("/internal/v1/projects", &[]).await?;
        Ok(reply.projects)
    }
}

/// Every byte but letters, digits and `-._~` as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The source `[billing] endpoint` names.
pub fn remote(endpoint: &str) -> Arc<dyn UsageSource> {
    Arc::new(RemoteUsage::new(endpoint))
}

/// Milliseconds since the epoch, now: open intervals are counted until
/// then.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
