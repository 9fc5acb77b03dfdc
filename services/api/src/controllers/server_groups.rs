//! `/v2.1/os-server-groups`: Nova's server groups. Before microversion
//! 2.64 a group has a `policies` list of one; from 2.64 a `policy` and
//! `rules` (`max_server_per_host` for anti-affinity). The soft policies
//! exist from 2.15. Groups belong to a project; administrators see every
//! project's with `all_projects`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use novalog_schemas::events::{ServerGroup, ServerGroupPolicy};
use novalog_schemas::{CatalogEvent, Event};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::intents::Intent;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::projection::ServerGroupView;
use crate::projection::verdicts::Verdict;
use crate::validation::query;
use crate::validation::{invalid, parse_bool, repr};

/// A validated create body.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCreate {
    pub name: String,
    pub policy: ServerGroupPolicy,
    pub max_server_per_host: Option<u32>,
}

fn policy(field: &str, v: &Value, version: ApiVersion) -> Result<ServerGroupPolicy> {
    let p = v.as_str().and_then(ServerGroupPolicy::parse);
    let soft = matches!(
        p,
        Some(ServerGroupPolicy::SoftAffinity | ServerGroupPolicy::SoftAntiAffinity)
    );
    match p {
        Some(p) if !soft || version.at_least(2, 15) => Ok(p),
        _ => {
            let allowed = if version.at_least(2, 15) {
                "['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"
            } else {
                "['anti-affinity', 'affinity']"
            };
            Err(invalid(
                field,
                v,
                format!("{} is not one of {allowed}", repr(v)),
            ))
        }
    }
}

/// Validates `POST /os-server-groups` at `version`.
pub fn parse(body: &Value, version: ApiVersion) -> Result<GroupCreate> {
    let top = body
        .as_object()
        .ok_or_else(|| invalid("", body, format!("{} is not of type 'object'", repr(body))))?;
    let g = top
        .get("server_group")
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute server_group. Value: None. 'server_group' is a required property"))?;
    let g: &Map<String, Value> = g.as_object().ok_or_else(|| {
        invalid(
            "server_group",
            g,
            format!("{} is not of type 'object'", repr(g)),
        )
    })?;
    if let Some(extra) = top.keys().find(|k| *k != "server_group") {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let new_shape = version.at_least(2, 64);
    let known: &[&str] = if new_shape {
        &["name", "policy", "rules"]
    } else {
        &["name", "policies"]
    };
    if let Some(extra) = g.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let name = match g.get("name") {
        None => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute server_group. Value: None. 'name' is a required property",
            ));
        }
        Some(v) => match v.as_str() {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= 255 => s.to_owned(),
            _ => {
                return Err(invalid(
                    "name",
                    v,
                    format!("{} is not a valid name", repr(v)),
                ));
            }
        },
    };
    if !new_shape {
        let v = g.get("policies").ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute server_group. Value: None. 'policies' is a required property",
            )
        })?;
        let list = v.as_array().filter(|l| l.len() == 1).ok_or_else(|| {
            invalid(
                "policies",
                v,
                format!("{} is not a list of exactly one policy", repr(v)),
            )
        })?;
        return Ok(GroupCreate {
            name,
            policy: policy("policies", &list[0], version)?,
            max_server_per_host: None,
        });
    }
    let v = g.get("policy").ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input for field/attribute server_group. Value: None. 'policy' is a required property",
        )
    })?;
    let policy = policy("policy", v, version)?;
    let mut max_server_per_host = None;
    if let Some(rules) = g.get("rules") {
        let r = rules.as_object().ok_or_else(|| {
            invalid(
                "rules",
                rules,
                format!("{} is not of type 'object'", repr(rules)),
            )
        })?;
        if let Some(extra) = r.keys().find(|k| *k != "max_server_per_host") {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{extra}' was unexpected)"
            )));
        }
        if let Some(m) = r.get("max_server_per_host") {
            let n = m
                .as_u64()
                .or_else(|| m.as_str().and_then(|s| s.parse().ok()))
                .filter(|n| (1..=u32::MAX as u64).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "rules/max_server_per_host",
                        m,
                        format!("{} is not a positive integer", repr(m)),
                    )
                })?;
            if policy != ServerGroupPolicy::AntiAffinity {
                return Err(ApiError::bad_request(
                    "Only anti-affinity policy supports rules.",
                ));
            }
            max_server_per_host = Some(n as u32);
        }
    }
    Ok(GroupCreate {
        name,
        policy,
        max_server_per_host,
    })
}

/// Nova's view: the members not deleted; project and user from 2.13;
/// `policy` and `rules` instead of `policies` and `metadata` from 2.64.
fn render(app: &App, g: &ServerGroupView, version: ApiVersion) -> Value {
    let members: Vec<String> = g
        .members
        .iter()
        .filter(|m| app.projection.instance(m).is_some_and(|i| !i.is_deleted()))
        .map(Uuid::to_string)
        .collect();
    let mut v = json!({
        "id": g.group.id,
        "name": g.group.name,
        "members": members,
    });
    if version.at_least(2, 64) {
        v["policy"] = json!(g.group.policy.as_str());
        v["rules"] = match g.group.max_server_per_host {
            Some(n) => json!({"max_server_per_host": n}),
            None => json!({}),
        };
    } else {
        v["policies"] = json!([g.group.policy.as_str()]);
        v["metadata"] = json!({});
    }
    if version.at_least(2, 13) {
        v["project_id"] = json!(g.group.project_id);
        v["user_id"] = json!(g.group.user_id);
    }
    v
}

fn visible(app: &App, ctx: &Context, id: &str) -> Result<std::sync::Arc<ServerGroupView>> {
    Uuid::parse_str(id)
        .ok()
        .and_then(|id| app.projection.server_group(&id))
        .filter(|g| ctx.is_admin || g.group.project_id == ctx.project_id)
        .ok_or_else(|| ApiError::not_found(format!("Instance group {id} could not be found.")))
}

/// `GET /os-server-groups`: the caller's project's groups; every project's
/// for an administrator asking `all_projects`; `limit` and `offset`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let mut all = false;
    let mut limit = None;
    let mut offset = 0usize;
    for (k, v) in query::SERVER_GROUPS.check(query_pairs(q.as_deref()), version, ctx.is_admin)? {
        match k.as_str() {
            "all_projects" => all = ctx.is_admin && parse_bool(&v).unwrap_or(false),
            "limit" => {
                limit = Some(
                    query::non_negative(&v)
                        .ok_or_else(|| ApiError::bad_request("limit param must be an integer"))?,
                )
            }
            "offset" => {
                offset = query::non_negative(&v)
                    .ok_or_else(|| ApiError::bad_request("offset param must be an integer"))?
            }
            _ => {}
        }
    }
    let visible: Vec<_> = app
        .projection
        .server_groups()
        .into_iter()
        .filter(|g| all || g.group.project_id == ctx.project_id)
        .collect();
    // Nova's `limited`: a page of at most `max_limit`, with no link.
    let groups: Vec<Value> = crate::paging::limited(visible, offset, limit, app.max_limit)
        .iter()
        .map(|g| render(&app, g, version))
        .collect();
    Ok(Json(json!({"server_groups": groups})))
}

pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let g = visible(&app, &ctx, &id)?;
    Ok(Json(json!({"server_group": render(&app, &g, version)})))
}

/// `POST /os-server-groups`: 200 with the group once the conductor
/// accepted it.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let req = parse(&body, version)?;
    let group = ServerGroup {
        id: Uuid::new_v4(),
        name: req.name,
        project_id: ctx.project_id.clone(),
        user_id: ctx.user_id.clone(),
        policy: req.policy,
        max_server_per_host: req.max_server_per_host,
        created_at_ms: 0,
    };
    let intent = Intent {
        aggregate_id: group.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ServerGroupCreateRequested(
            Box::new(group.clone()),
        )),
    };
    let group = match decide(&app, &ctx, &request_id, intent).await? {
        Verdict::Accepted(event) => match *event {
            Event::Catalog(CatalogEvent::ServerGroupCreated(g)) => *g,
            _ => group,
        },
        Verdict::Rejected(r) => return Err(r.into()),
    };
    let view = ServerGroupView {
        group,
        members: Default::default(),
    };
    Ok(Json(json!({"server_group": render(&app, &view, version)})))
}

/// `DELETE /os-server-groups/{id}`: 204; members stay where they are.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let g = visible(&app, &ctx, &id)?;
    let intent = Intent {
        aggregate_id: g.group.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ServerGroupDeleteRequested {
            group_id: g.group.id,
        }),
    };
    match decide(&app, &ctx, &request_id, intent).await? {
        Verdict::Accepted(_) => Ok(StatusCode::NO_CONTENT),
        Verdict::Rejected(r) => Err(r.into()),
    }
}

async fn decide(app: &App, ctx: &Context, request_id: &str, intent: Intent) -> Result<Verdict> {
    app.intents
        .submit(ctx, request_id, &ctx.project_id, vec![intent])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("No verdict was returned."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_1: ApiVersion = ApiVersion::new(2, 1);
    const V2_64: ApiVersion = ApiVersion::new(2, 64);

    fn err(body: Value, v: ApiVersion) -> String {
        parse(&body, v).unwrap_err().message
    }

    #[test]
    fn policies_before_2_64_and_policy_with_rules_after() {
        let g = parse(
            &json!({"server_group": {"name": "g", "policies": ["anti-affinity"]}}),
            V2_1,
        )
        .unwrap();
        assert_eq!(g.policy, ServerGroupPolicy::AntiAffinity);
        let g = parse(
            &json!({"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}),
            V2_64,
        )
        .unwrap();
        assert_eq!(g.max_server_per_host, Some(2));
        assert!(
            err(
                json!({"server_group": {"name": "g", "policy": "affinity"}}),
                V2_1
            )
            .contains("policy")
        );
        assert!(
            err(
                json!({"server_group": {"name": "g", "policies": ["affinity"]}}),
                V2_64
            )
            .contains("policies")
        );
    }

    #[test]
    fn errors_name_their_field() {
        assert!(err(json!({"server_group": {"policies": ["affinity"]}}), V2_1).contains("'name'"));
        assert!(
            err(
                json!({"server_group": {"name": "", "policies": ["affinity"]}}),
                V2_1
            )
            .contains("name")
        );
        assert!(
            err(
                json!({"server_group": {"name": "g", "policies": ["x"]}}),
                V2_1
            )
            .contains("policies")
        );
        assert!(
            err(
                json!({"server_group": {"name": "g", "policies": ["soft-affinity"]}}),
                V2_1
            )
            .contains("policies")
        );
        assert!(
            parse(
                &json!({"server_group": {"name": "g", "policies": ["soft-affinity"]}}),
                ApiVersion::new(2, 15)
            )
            .is_ok()
        );
        assert!(
            err(json!({"server_group": {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}}), V2_64)
                .contains("max_server_per_host")
        );
        assert!(
            err(json!({"server_group": {"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}}}), V2_64)
                .contains("anti-affinity")
        );
    }
}
