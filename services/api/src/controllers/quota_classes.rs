//! `/v2.1/os-quota-class-sets/{class}` (nova's quota_classes controller):
//! the limits of a quota class, administrators only. Class `default` is
//! what every project without its own limit falls back to; a change is an
//! intent the conductor decides, folded back as `QuotaClassSetUpdated`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use novalog_schemas::Event;
use novalog_schemas::quota::RESOURCES;
use serde_json::{Map, Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::controllers::quota_sets::{V236, V257, parse_update_of};
use crate::domain::intents::Intent;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId};
use crate::microversion::ApiVersion;
use crate::projection::verdicts::Verdict;

fn admin_only(ctx: &Context, rule: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-quota-class-sets:{rule} to be performed."
        )))
    }
}

/// `class`'s limit of every resource: its own, else the configured default
/// (Nova's `get_class_quotas`).
fn limits_of(app: &App, class: &str) -> BTreeMap<&'static str, i64> {
    app.quota_defaults
        .limits(&app.projection.quota_class(class))
}

/// The resources a version shows: before 2.50 not the server group ones
/// (bug 1693168), from 2.50 not the nova-network ones, from 2.57 not the
/// injected files.
fn shown(version: ApiVersion) -> impl Iterator<Item = &'static str> {
    let hidden: &[&str] = if version.at_least(2, 57) {
        &[
            "fixed_ips",
            "floating_ips",
            "security_group_rules",
            "security_groups",
            "injected_files",
            "injected_file_content_bytes",
            "injected_file_path_bytes",
        ]
    } else if version.at_least(2, 50) {
        &[
            "fixed_ips",
            "floating_ips",
            "security_group_rules",
            "security_groups",
        ]
    } else {
        &["server_groups", "server_group_members"]
    };
    RESOURCES
        .iter()
        .copied()
        .filter(move |r| !hidden.contains(r))
}

fn class_set(id: Option<&str>, version: ApiVersion, limits: &BTreeMap<&str, i64>) -> Value {
    let mut set = Map::new();
    if let Some(id) = id {
        set.insert("id".into(), json!(id));
    }
    for r in shown(version) {
        set.insert(r.to_owned(), json!(limits[r]));
    }
    json!({ "quota_class_set": set })
}

/// `GET /os-quota-class-sets/{class}`: any name answers, with the defaults
/// for what the class has not set.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(class): Path<String>,
) -> Result<Json<Value>> {
    admin_only(&ctx, "show")?;
    Ok(Json(class_set(
        Some(&class),
        version,
        &limits_of(&app, &class),
    )))
}

/// The body of `PUT /os-quota-class-sets/{class}`: the update schema of
/// the quota sets without `force`, by version (2.50 drops the
/// nova-network resources, 2.57 the injected files).
pub fn parse_update(body: &Value, version: ApiVersion) -> Result<BTreeMap<String, i64>> {
    let hidden = if version.at_least(2, 57) {
        V257
    } else if version.at_least(2, 50) {
        V236
    } else {
        &[]
    };
    parse_update_of(body, "quota_class_set", hidden, false).map(|(limits, _)| limits)
}

/// `PUT /os-quota-class-sets/{class}` (administrators): the class's limits
/// after, without its id.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(class): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    admin_only(&ctx, "update")?;
    if class.is_empty() || class.chars().count() > 255 {
        return Err(ApiError::bad_request(
            "quota_class_name has a length outside 1 to 255 characters.",
        ));
    }
    let limits = parse_update(&body, version)?;
    let event = Event::Intent(novalog_schemas::Intent::QuotaClassSetRequested {
        class_name: class.clone(),
        limits,
    });
    // Keyed by the caller's project, as its other catalog writes.
    let intent = Intent {
        aggregate_id: class.clone(),
        event,
    };
    let verdicts = app
        .intents
        .submit(&ctx, &request_id, &ctx.project_id, vec![intent])
        .await?;
    if let Some(Verdict::Rejected(r)) = verdicts.into_iter().next() {
        return Err(r.into());
    }
    Ok(Json(class_set(None, version, &limits_of(&app, &class))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_updates_follow_novas_schema_by_version() {
        let v21 = ApiVersion::new(2, 1);
        let limits = parse_update(
            &json!({"quota_class_set": {"cores": 40, "floating_ips": "5"}}),
            v21,
        )
        .unwrap();
        assert_eq!(
            limits,
            BTreeMap::from([("cores".into(), 40), ("floating_ips".into(), 5)])
        );
        let err = |b: Value, v| parse_update(&b, v).unwrap_err().message;
        assert!(
            err(json!({"quota_class_set": {"force": true}}), v21)
                .contains("'force' was unexpected")
        );
        assert!(
            err(
                json!({"quota_class_set": {"floating_ips": 1}}),
                ApiVersion::new(2, 50)
            )
            .contains("'floating_ips' was unexpected")
        );
        assert!(
            err(
                json!({"quota_class_set": {"injected_files": 1}}),
                ApiVersion::new(2, 57)
            )
            .contains("'injected_files' was unexpected")
        );
        assert_eq!(
            err(json!({}), v21),
            "'quota_class_set' is a required property"
        );
    }

    #[test]
    fn server_group_limits_show_from_2_50_and_network_ones_until_it() {
        let at = |minor| shown(ApiVersion::new(2, minor)).collect::<Vec<_>>();
        assert!(!at(49).contains(&"server_groups") && at(49).contains(&"floating_ips"));
        assert!(at(50).contains(&"server_groups") && !at(50).contains(&"floating_ips"));
        assert!(at(56).contains(&"injected_files") && !at(57).contains(&"injected_files"));
    }
}
