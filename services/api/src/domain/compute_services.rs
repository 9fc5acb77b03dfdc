//! Compute services and hypervisors as Nova shows them (`os-services`,
//! `os-hypervisors`): one `nova-compute` service and one hypervisor per
//! registered host, up while its heartbeats are fresher than
//! `service_down_time` and it is not forced down. Changes an operator makes
//! go through the conductor onto the `hosts` topic.

use novalog_schemas::Event;
use novalog_schemas::events::ServiceChange;
use uuid::Uuid;

use crate::auth::Context;
use crate::domain::Domain;
use crate::domain::intents::Intent;
use crate::error::ApiError;
use crate::microversion::ApiVersion;
use crate::projection::HostView;
use crate::projection::verdicts::Verdict;

/// The only binary whose services exist here.
pub const COMPUTE: &str = "nova-compute";

/// `os_compute_api:os-services:<action>`: administrators only.
pub fn authorize(ctx: &Context, action: &str) -> Result<(), ApiError> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-services:{action} to be performed."
        )))
    }
}

/// The host a service id names: an integer below 2.53, a uuid from it.
/// A malformed id is 400, an unknown one 404, as Nova answers.
pub fn by_id(app: &Domain, id: &str, version: ApiVersion) -> Result<HostView, ApiError> {
    let not_found = || ApiError::not_found(format!("Service {id} could not be found."));
    let hosts = app.projection.hosts();
    if version.at_least(2, 53) {
        let uuid =
            Uuid::parse_str(id).map_err(|_| ApiError::bad_request(format!("Invalid uuid {id}")))?;
        hosts
            .into_iter()
            .find(|h| h.uuid == uuid)
            .ok_or_else(not_found)
    } else {
        let n: u32 = id.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid input received: Service id must be an integer: {id}"
            ))
        })?;
        hosts.into_iter().find(|h| h.id == n).ok_or_else(not_found)
    }
}

/// Has the conductor apply `change` to the service's status as it is when
/// it decides (not as this API last saw it), so concurrent changes to
/// different fields are all kept.
pub async fn update(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    change: ServiceChange,
) -> Result<(), ApiError> {
    let intent = Intent {
        aggregate_id: change.host.clone(),
        event: Event::Intent(novalog_schemas::Intent::ServiceChangeRequested(Box::new(
            change,
        ))),
    };
    decide(app, ctx, request_id, intent).await
}

/// Deletes the service record of `host` (Nova refuses while it hosts
/// instances: 409).
pub async fn delete(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    host: &str,
) -> Result<(), ApiError> {
    let intent = Intent {
        aggregate_id: host.to_owned(),
        event: Event::Intent(novalog_schemas::Intent::ServiceDeleteRequested {
            host: host.to_owned(),
        }),
    };
    decide(app, ctx, request_id, intent).await
}

async fn decide(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    intent: Intent,
) -> Result<(), ApiError> {
    let verdicts = app
        .intents
        .submit(ctx, request_id, &ctx.project_id, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Rejected(r)) => Err(r.into()),
        _ => Ok(()),
    }
}

/// Nova's `uptime`-style string for a host up since `since_ms`:
/// ` HH:MM:SS up D days, HH:MM,  0 users,  load average: 0.00, 0.00, 0.00`.
pub fn uptime(now_ms: i64, since_ms: i64) -> String {
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let up_min = ((now_ms - since_ms).max(0) / 60_000) as u64;
    let (days, hours, mins) = (up_min / 1440, (up_min % 1440) / 60, up_min % 60);
    let day_word = if days == 1 { "day" } else { "days" };
    format!(
        " {} up {days} {day_word}, {hours:2}:{mins:02},  0 users,  load average: 0.00, 0.00, 0.00",
        now.format("%H:%M:%S")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_like_the_command() {
        let t0 = 1_700_000_000_000; // 22:13:20 UTC
        let later = t0 + ((26 * 60 + 5) * 60_000);
        assert_eq!(
            uptime(later, t0),
            " 00:18:20 up 1 day,  2:05,  0 users,  load average: 0.00, 0.00, 0.00"
        );
        assert!(uptime(t0, t0).contains("up 0 days,  0:00"));
    }

    #[test]
    fn members_may_not_touch_services() {
        let demo = crate::auth::noauth2("demo").unwrap();
        assert_eq!(
            authorize(&demo, "list").unwrap_err().message,
            "Policy doesn't allow os_compute_api:os-services:list to be performed."
        );
        assert!(authorize(&Context::admin(), "list").is_ok());
    }
}
