//! Writing intents and waiting for their verdicts: the only way this service
//! changes anything.

use std::sync::Arc;
use std::time::Duration;

use novalog_log::{EventLog, Record};
use novalog_schemas::{Envelope, Event, Meta};
use uuid::Uuid;

use crate::auth::Context;
use crate::error::ApiError;
use crate::projection::verdicts::{Verdict, Verdicts};

/// One thing a request asks for.
#[derive(Debug, Clone)]
pub struct Intent {
    /// The instance, flavor or image it concerns.
    pub aggregate_id: String,
    pub event: Event,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the event log refused the intent: {0}")]
    Log(#[from] novalog_log::Error),
    #[error("no verdict within {0:?}")]
    Timeout(Duration),
    /// The conductor's answers came back without one for this intent
    /// (never expected: one verdict per intent).
    #[error("no verdict was returned")]
    NoVerdict,
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        tracing::warn!(error = %e, "intent not answered");
        match e {
            SubmitError::Log(_) => ApiError::unavailable(
                "The service is temporarily unable to record the request; try again later.",
            ),
            SubmitError::Timeout(_) => ApiError::unavailable(
                "The request was accepted for processing but no decision was made in time; check the resource's state before retrying.",
            ),
            SubmitError::NoVerdict => ApiError::unavailable("No verdict was returned."),
        }
    }
}

/// Appends intents to the `intents` topic and waits for their verdicts.
pub struct Intents {
    log: Arc<dyn EventLog>,
    topic: String,
    verdicts: Arc<Verdicts>,
    timeout: Duration,
}

/// Forgets the registered waiters however the request ends (answered,
/// timed out, or dropped because the client went away).
struct Registered<'a> {
    verdicts: &'a Verdicts,
    ids: Vec<Uuid>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            self.verdicts.forget(id);
        }
    }
}

impl Intents {
    pub fn new(
        log: Arc<dyn EventLog>,
        topic: String,
        verdicts: Arc<Verdicts>,
        timeout: Duration,
    ) -> Self {
        Intents {
            log,
            topic,
            verdicts,
            timeout,
        }
    }

    /// How long a write waits for its verdict (`[api] verdict_timeout_ms`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Requests waiting for a verdict now.
    pub fn pending(&self) -> usize {
        self.verdicts.pending()
    }

    /// Appends `intents` in one batch, keyed by `project_id` (the
    /// consistency boundary), on behalf of `ctx` under request id
    /// `request_id`, and returns their verdicts in order.
    pub async fn submit(
        &self,
        ctx: &Context,
        request_id: &str,
        project_id: &str,
        intents: Vec<Intent>,
    ) -> Result<Vec<Verdict>, SubmitError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let actor = ctx.actor();
        let mut registered = Registered {
            verdicts: &self.verdicts,
            ids: Vec::with_capacity(intents.len()),
        };
        let mut receivers = Vec::with_capacity(intents.len());
        let mut records = Vec::with_capacity(intents.len());
        for intent in intents {
            let id = Uuid::new_v4();
            receivers.push(self.verdicts.register(id));
            registered.ids.push(id);
            let env = Envelope {
                meta: Meta::origin(
                    id,
                    request_id.to_owned(),
                    actor.clone(),
                    intent.aggregate_id,
                ),
                event: intent.event,
            };
            records.push(Record::new(
                self.topic.clone(),
                project_id.as_bytes().to_vec(),
                novalog_schemas::encode(&env),
            ));
        }
        self.log.append(records).await?;
        let mut verdicts = Vec::with_capacity(receivers.len());
        for rx in receivers {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(v)) => verdicts.push(v),
                // A dropped sender means the waiter was forgotten: treat it
                // like no answer.
                Ok(Err(_)) | Err(_) => return Err(SubmitError::Timeout(self.timeout)),
            }
        }
        drop(registered);
        Ok(verdicts)
    }
}
