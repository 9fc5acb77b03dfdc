//! `/v2.1/os-quota-sets/{project}[/defaults|/detail]` and `/v2.1/limits`
//! (nova's quota_sets and limits controllers). Limits and usage are read
//! from the projection; changes are intents the conductor decides (it is
//! also the one that enforces quotas, exactly, when it accepts a create).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use novalog_schemas::Event;
use novalog_schemas::quota::RESOURCES;
use serde_json::{Map, Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::intents::Intent;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::policy::{self, Rule};
use crate::projection::verdicts::Verdict;
use crate::validation::{boolean, invalid, object, repr, required};

/// Resources a microversion no longer shows: the nova-network ones from
/// 2.36, the injected files from 2.57.
pub(crate) fn filtered(version: ApiVersion) -> &'static [&'static str] {
    if version.at_least(2, 57) {
        V257
    } else if version.at_least(2, 36) {
        V236
    } else {
        &[]
    }
}

/// The nova-network resources.
pub(crate) const V236: &[&str] = &[
    "fixed_ips",
    "floating_ips",
    "security_group_rules",
    "security_groups",
];
/// The nova-network resources and the injected files.
pub(crate) const V257: &[&str] = &[
    "fixed_ips",
    "floating_ips",
    "security_group_rules",
    "security_groups",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
];

fn admin_only(ctx: &Context, rule: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-quota-sets:{rule} to be performed."
        )))
    }
}

/// `project`'s limits: its own, else quota class `default`'s, else the
/// configured defaults.
pub(crate) fn limits_of(app: &App, project: &str) -> BTreeMap<&'static str, i64> {
    app.quota_defaults.limits_in_class(
        &app.projection.quota_class(DEFAULT_CLASS),
        &app.projection.quota_overrides(project),
    )
}

/// The quota class every project falls back to.
pub const DEFAULT_CLASS: &str = "default";

/// Each resource the version shows, with `value(resource)`.
fn quota_set(
    id: Option<&str>,
    version: ApiVersion,
    value: impl Fn(&'static str) -> Value,
) -> Value {
    let mut set = Map::new();
    if let Some(id) = id {
        set.insert("id".into(), json!(id));
    }
    for r in RESOURCES {
        if !filtered(version).contains(r) {
            set.insert((*r).to_owned(), value(r));
        }
    }
    json!({ "quota_set": set })
}

/// `GET /os-quota-sets/{project}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    policy::authorize(
        &ctx,
        Rule::ReaderOrAdmin("os_compute_api:os-quota-sets:show"),
        Some(&project),
    )?;
    let limits = limits_of(&app, &project);
    Ok(Json(quota_set(Some(&project), version, |r| {
        json!(limits[r])
    })))
}

/// `GET /os-quota-sets/{project}/detail`: limit, in_use and reserved.
pub async fn detail(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    policy::authorize(
        &ctx,
        Rule::ReaderOrAdmin("os_compute_api:os-quota-sets:detail"),
        Some(&project),
    )?;
    let limits = limits_of(&app, &project);
    let (usage, groups) = app.projection.usage(&project);
    Ok(Json(quota_set(Some(&project), version, |r| {
        let in_use = match r {
            "server_groups" => groups,
            other => usage.get(other),
        };
        json!({"in_use": in_use, "limit": limits[r], "reserved": 0})
    })))
}

/// `GET /os-quota-sets/{project}/defaults`.
pub async fn defaults(
    State(app): State<AppState>,
    // Nova's `os-quota-sets:defaults` is RULE_ANY: the defaults are the
    // same for every project and reveal nothing about the named one.
    _ctx: Context,
    version: ApiVersion,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    let defaults = app
        .quota_defaults
        .limits(&app.projection.quota_class(DEFAULT_CLASS));
    Ok(Json(quota_set(Some(&project), version, |r| {
        json!(defaults[r])
    })))
}

/// The body of `PUT /os-quota-sets/{project}`: the limits to set and
/// `force`.
pub fn parse_update(body: &Value, version: ApiVersion) -> Result<(BTreeMap<String, i64>, bool)> {
    parse_update_of(body, "quota_set", filtered(version), true)
}

/// A quota update body under `root`: the limits of the resources not
/// `hidden`, and `force` where `with_force`.
pub(crate) fn parse_update_of(
    body: &Value,
    root: &str,
    hidden: &[&str],
    with_force: bool,
) -> Result<(BTreeMap<String, i64>, bool)> {
    let obj = object("", body)?;
    if let Some(extra) = obj.keys().find(|k| *k != root) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let qs = required("", obj, root)?;
    let set = object(root, qs)?;
    let mut limits = BTreeMap::new();
    let mut force = false;
    for (k, v) in set {
        if with_force && k == "force" {
            force = boolean("force", v)?;
            continue;
        }
        if !RESOURCES.contains(&k.as_str()) || hidden.contains(&k.as_str()) {
            return Err(invalid(
                root,
                qs,
                format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            invalid(
                k,
                v,
                format!("{} is not of type 'integer', 'string'", repr(v)),
            )
        })?;
        if n < -1 {
            return Err(invalid(k, v, format!("{n} is less than the minimum of -1")));
        }
        if n > i64::from(i32::MAX) {
            return Err(invalid(
                k,
                v,
                format!("{n} is greater than the maximum of 2147483647"),
            ));
        }
        limits.insert(k.clone(), n);
    }
    Ok((limits, force))
}

async fn submit(
    app: &App,
    ctx: &Context,
    request_id: &str,
    project: &str,
    event: Event,
) -> Result<()> {
    // Keyed by the project it concerns: ordered with its creates.
    let intent = Intent {
        aggregate_id: project.to_owned(),
        event,
    };
    let verdicts = app
        .intents
        .submit(ctx, request_id, project, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Rejected(r)) => Err(r.into()),
        _ => Ok(()),
    }
}

/// `PUT /os-quota-sets/{project}` (administrators): the limits after.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(project): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    admin_only(&ctx, "update")?;
    let (limits, force) = parse_update(&body, version)?;
    let event = Event::Intent(novalog_schemas::Intent::QuotaSetRequested {
        project_id: project.clone(),
        limits,
        force,
    });
    submit(&app, &ctx, &request_id, &project, event).await?;
    let limits = limits_of(&app, &project);
    Ok(Json(quota_set(None, version, |r| json!(limits[r]))))
}

/// `DELETE /os-quota-sets/{project}` (administrators): back to the
/// defaults, 202.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(project): Path<String>,
) -> Result<StatusCode> {
    admin_only(&ctx, "delete")?;
    let event = Event::Intent(novalog_schemas::Intent::QuotaResetRequested {
        project_id: project.clone(),
    });
    submit(&app, &ctx, &request_id, &project, event).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /limits[?tenant_id=]`: the caller's (or, for administrators, the
/// named project's) absolute limits and usage.
pub async fn limits(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let asked = query_pairs(q.as_deref())
        .into_iter()
        .find(|(k, _)| k == "tenant_id")
        .map(|(_, v)| v);
    let project = match asked {
        Some(p) if p != ctx.project_id => {
            if !ctx.is_admin {
                return Err(ApiError::forbidden(
                    "Policy doesn't allow os_compute_api:limits:other_project to be performed.",
                ));
            }
            p
        }
        _ => ctx.project_id.clone(),
    };
    let l = limits_of(&app, &project);
    let (usage, groups) = app.projection.usage(&project);
    let mut absolute = json!({
        "maxServerMeta": l["metadata_items"],
        "maxTotalInstances": l["instances"],
        "maxTotalCores": l["cores"],
        "maxTotalRAMSize": l["ram"],
        "maxTotalKeypairs": l["key_pairs"],
        "maxServerGroups": l["server_groups"],
        "maxServerGroupMembers": l["server_group_members"],
        "totalInstancesUsed": usage.instances,
        "totalCoresUsed": usage.cores,
        "totalRAMUsed": usage.ram,
        "totalServerGroupsUsed": groups,
    });
    if !version.at_least(2, 36) {
        absolute["maxSecurityGroups"] = json!(l["security_groups"]);
        absolute["maxSecurityGroupRules"] = json!(l["security_group_rules"]);
        absolute["maxTotalFloatingIps"] = json!(l["floating_ips"]);
        absolute["totalFloatingIpsUsed"] = json!(0);
        absolute["totalSecurityGroupsUsed"] = json!(0);
    }
    if !version.at_least(2, 39) {
        absolute["maxImageMeta"] = json!(l["metadata_items"]);
    }
    if !version.at_least(2, 57) {
        absolute["maxPersonality"] = json!(l["injected_files"]);
        absolute["maxPersonalitySize"] = json!(l["injected_file_content_bytes"]);
    }
    Ok(Json(json!({"limits": {"rate": [], "absolute": absolute}})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_bodies_follow_novas_schema() {
        let v21 = ApiVersion::new(2, 1);
        let (limits, force) = parse_update(
            &json!({"quota_set": {"instances": 20, "cores": "-1", "force": "true"}}),
            v21,
        )
        .unwrap();
        assert_eq!(
            limits,
            BTreeMap::from([("cores".into(), -1), ("instances".into(), 20)])
        );
        assert!(force);
        let err = |b: Value, v| parse_update(&b, v).unwrap_err().message;
        assert!(
            err(json!({"quota_set": {"instances": -2}}), v21)
                .contains("less than the minimum of -1")
        );
        assert!(err(json!({"quota_set": {"instances": "ten"}}), v21).contains("is not of type"));
        assert!(
            err(json!({"quota_set": {"bananas": 1}}), v21).contains("'bananas' was unexpected")
        );
        assert!(
            err(
                json!({"quota_set": {"floating_ips": 1}}),
                ApiVersion::new(2, 36)
            )
            .contains("'floating_ips' was unexpected")
        );
        assert_eq!(err(json!({}), v21), "'quota_set' is a required property");
        assert!(err(json!({"quota_set": {}, "x": 1}), v21).contains("'x' was unexpected"));
    }
}
