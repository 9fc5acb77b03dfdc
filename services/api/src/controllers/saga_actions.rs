//! The server actions that start or steer a saga in the conductor
//! (Nova's compute API for them): `resize`, `confirmResize`,
//! `revertResize`, `migrate`, `rebuild`, `evacuate`, `os-migrateLive`.
//! Each validates its body as Nova's schema does, checks policy, looks up
//! what the intent needs (flavor, image, host) and submits it; the
//! conductor decides the state checks (409s) itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use novalog_schemas::migration::{MigrationType, ServerMigrationRequested, ServerRebuildRequested};
use novalog_schemas::{Event, Instance};
use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::auth::Context;
use crate::domain::catalog;
use crate::domain::intents::Intent;
use crate::error::ApiError;
use crate::microversion::ApiVersion;
use crate::projection::verdicts::Verdict;
use crate::validation::{self, invalid, object, only, required};

/// How a saga action answers when accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 202, no body.
    Accepted,
    /// 204 (`confirmResize`).
    NoContent,
    /// 202 with the rebuilt server (`rebuild`); the admin password to add.
    Rebuilt { admin_pass: String },
    /// 200 with this body, or none (`evacuate`).
    Evacuated { admin_pass: Option<String> },
}

fn admin_only(ctx: &Context, rule: &str) -> Result<(), ApiError> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

async fn submit(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Instance,
    event: Event,
) -> Result<(), ApiError> {
    let intent = Intent {
        aggregate_id: inst.id.to_string(),
        event,
    };
    let verdicts = app
        .intents
        .submit(ctx, request_id, &inst.project_id, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Rejected(r)) => Err(r.into()),
        _ => Ok(()),
    }
}

/// The id at the end of an href (`http://.../flavors/2` → `2`).
fn id_from_href(s: &str) -> &str {
    s.trim_end_matches('/').rsplit('/').next().unwrap_or(s)
}

/// A known compute host, or Nova's 400.
fn compute_host(app: &App, host: &str) -> Result<(), ApiError> {
    app.projection
        .host(host)
        .map(|_| ())
        .ok_or_else(|| ApiError::bad_request(format!("Compute host {host} could not be found.")))
}

/// `{"resize": {"flavorRef": "2"}}`.
pub async fn resize(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Arc<Instance>,
    body: &Value,
) -> Result<Outcome, ApiError> {
    let r = object("resize", body)?;
    only("resize", r, &["flavorRef", "OS-DCF:diskConfig"])?;
    let auto_disk_config = validation::access::parse(r)?.auto_disk_config;
    let flavor_ref = required("resize", r, "flavorRef")?;
    let flavor_ref = match flavor_ref {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(invalid(
                "flavorRef",
                other,
                format!(
                    "{} is not of type 'string', 'integer'",
                    validation::repr(other)
                ),
            ));
        }
    };
    let flavor_id = id_from_href(&flavor_ref);
    let flavor = catalog::visible_flavor(app, ctx, flavor_id)
        .ok_or_else(|| ApiError::bad_request(format!("Flavor {flavor_id} could not be found.")))?;
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: inst.id,
                migration_type: MigrationType::Resize,
                flavor: Some((*flavor).clone()),
                host: None,
                source_host_down: false,
                auto_disk_config,
                stop_at_destination: false,
            },
        ))),
    )
    .await?;
    Ok(Outcome::Accepted)
}

/// `{"migrate": null}` (any value before 2.56) or, from 2.56,
/// `{"migrate": {"host": "h"}}`.
pub async fn migrate(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Arc<Instance>,
    body: &Value,
    version: ApiVersion,
) -> Result<Outcome, ApiError> {
    let mut host = None;
    if version.at_least(2, 56) && !body.is_null() {
        let m = object("migrate", body)?;
        only("migrate", m, &["host"])?;
        if let Some(h) = m.get("host").filter(|h| !h.is_null()) {
            host = Some(validation::string("host", h, 1, 255)?.to_owned());
        }
    }
    // Before 2.56 Nova has no schema for `migrate`: any value is taken as
    // "no host" (`{}` from older tooling included).
    admin_only(
        ctx,
        if host.is_some() {
            "os_compute_api:os-migrate-server:migrate:host"
        } else {
            "os_compute_api:os-migrate-server:migrate"
        },
    )?;
    if let Some(h) = &host {
        compute_host(app, h)?;
        if inst.host.as_deref() == Some(h.as_str()) {
            return Err(ApiError::bad_request(
                "Cannot migrate to the host where the server exists.",
            ));
        }
    }
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: inst.id,
                migration_type: MigrationType::Migration,
                flavor: None,
                host,
                source_host_down: false,
                auto_disk_config: None,
                stop_at_destination: false,
            },
        ))),
    )
    .await?;
    Ok(Outcome::Accepted)
}

/// `{"confirmResize": null}`: 204.
pub async fn confirm_resize(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Arc<Instance>,
    body: &Value,
) -> Result<Outcome, ApiError> {
    validation::null("confirmResize", body)?;
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerResizeConfirmRequested {
            instance_id: inst.id,
        }),
    )
    .await?;
    Ok(Outcome::NoContent)
}

/// `{"revertResize": null}`: 202.
pub async fn revert_resize(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Arc<Instance>,
    body: &Value,
) -> Result<Outcome, ApiError> {
    validation::null("revertResize", body)?;
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerResizeRevertRequested {
            instance_id: inst.id,
        }),
    )
    .await?;
    Ok(Outcome::Accepted)
}

/// `{"rebuild": {"imageRef": ..., "name": ..., "metadata": {...},
/// "adminPass": ...}}`: 202 with the server.
pub async fn rebuild(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    inst: &Arc<Instance>,
    body: &Value,
) -> Result<Outcome, ApiError> {
    let r = object("rebuild", body)?;
    // Nova's rebuild schema per microversion: description from 2.19,
    // key_name from 2.54, user_data from 2.57 (which drops personality).
    let mut allowed = vec![
        "imageRef",
        "name",
        "metadata",
        "adminPass",
        "preserve_ephemeral",
        "OS-DCF:diskConfig",
        "accessIPv4",
        "accessIPv6",
    ];
    if version.at_least(2, 19) {
        allowed.push("description");
    }
    if version.at_least(2, 54) {
        allowed.push("key_name");
    }
    if version.at_least(2, 57) {
        allowed.push("user_data");
    } else {
        allowed.push("personality");
    }
    if version.at_least(2, 63) {
        allowed.push("trusted_image_certificates");
    }
    if version.at_least(2, 90) {
        allowed.push("hostname");
    }
    only("rebuild", r, &allowed)?;
    // 2.63: given (even null: unset) replaces the server's certificates.
    let trusted_image_certificates = r
        .get("trusted_image_certificates")
        .filter(|_| version.at_least(2, 63))
        .map(crate::validation::server_create::trusted_certs)
        .transpose()?;
    let hostname = r
        .get("hostname")
        .filter(|_| version.at_least(2, 90))
        .map(|v| crate::validation::server_create::guest_hostname(v, version))
        .transpose()?;
    let access = validation::access::parse(r)?;
    let key_name = match r.get("key_name") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => {
            let key = validation::string("key_name", v, 1, 255)?;
            if app.projection.keypair(&ctx.user_id, key).is_none() {
                return Err(ApiError::bad_request("Invalid key_name provided."));
            }
            Some(Some(key.to_owned()))
        }
    };
    let user_data = match r.get("user_data") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(crate::validation::server_create::user_data(v)?)),
    };
    let description = r
        .get("description")
        .map(crate::validation::server_create::description)
        .transpose()?;
    let image_ref = validation::string("imageRef", required("rebuild", r, "imageRef")?, 0, 255)?;
    let image_id = Uuid::parse_str(id_from_href(image_ref)).map_err(|_| {
        ApiError::bad_request("Invalid image identifier or specified image is not found.")
    })?;
    let image = catalog::visible_image(app, ctx, &image_id)
        .ok_or_else(|| ApiError::bad_request("Cannot find image for rebuild"))?;
    // Nova's `_checks_for_create_and_rebuild`: the image must be active
    // and fit the server's flavor, decided here so that no user's number
    // reaches the conductor unchecked.
    crate::domain::compute::check_image_fits(&inst.flavor, &image)?;
    let name = match r.get("name") {
        Some(v) => Some(validation::name("name", v)?),
        None => None,
    };
    let metadata = match r.get("metadata") {
        Some(v) => {
            let m = object("metadata", v)?;
            let mut out = BTreeMap::new();
            for (k, v) in m {
                if k.is_empty() || k.chars().count() > 255 {
                    return Err(invalid(
                        "metadata",
                        v,
                        format!(
                            "'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"
                        ),
                    ));
                }
                out.insert(
                    k.clone(),
                    validation::string(&format!("metadata.{k}"), v, 0, 255)?.to_owned(),
                );
            }
            Some(out)
        }
        None => None,
    };
    let admin_pass = match r.get("adminPass") {
        Some(v) => validation::string("adminPass", v, 0, 255)?.to_owned(),
        None => crate::domain::compute::admin_password(),
    };
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerRebuildRequested(Box::new(
            ServerRebuildRequested {
                instance_id: inst.id,
                image: (*image).clone(),
                name,
                metadata,
                key_name,
                user_data,
                description,
                access,
                trusted_image_certificates,
                hostname,
            },
        ))),
    )
    .await?;
    Ok(Outcome::Rebuilt { admin_pass })
}

/// `{"evacuate": {"host": ..., "adminPass": ..., "onSharedStorage": ...}}`
/// (admin): the source host must be down.
pub async fn evacuate(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Arc<Instance>,
    body: &Value,
    version: ApiVersion,
    service_down_time_ms: i64,
) -> Result<Outcome, ApiError> {
    let e = object("evacuate", body)?;
    let mut allowed = vec!["host", "adminPass"];
    if !version.at_least(2, 14) {
        allowed.push("onSharedStorage");
    }
    // `force` from 2.29 until 2.68 removed it.
    if version.at_least(2, 29) && !version.at_least(2, 68) {
        allowed.push("force");
    }
    only("evacuate", e, &allowed)?;
    admin_only(ctx, "os_compute_api:os-evacuate")?;
    let host = match e.get("host").filter(|h| !h.is_null()) {
        Some(h) => Some(validation::string("host", h, 1, 255)?.to_owned()),
        None => None,
    };
    if let Some(h) = &host {
        if app.projection.host(h).is_none() {
            return Err(ApiError::not_found(format!("Compute host {h} not found.")));
        }
        if inst.host.as_deref() == Some(h.as_str()) {
            return Err(ApiError::bad_request(
                "The target host can't be the same one.",
            ));
        }
    }
    let source = inst.host.clone().unwrap_or_default();
    let down = app
        .projection
        .host(&source)
        // Nova's servicegroup check: heartbeats gone stale, or forced down
        // by an operator (a disabled host that still beats is up).
        .is_none_or(|h| !h.is_up(novalog_schemas::now_ms(), service_down_time_ms));
    if !down {
        return Err(ApiError::bad_request(format!(
            "Compute service of {source} is still in use."
        )));
    }
    let admin_pass = match e.get("adminPass") {
        Some(v) => Some(validation::string("adminPass", v, 0, 255)?.to_owned()),
        None => None,
    };
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: inst.id,
                migration_type: MigrationType::Evacuation,
                flavor: None,
                host,
                source_host_down: true,
                auto_disk_config: None,
                // 2.95: the guest ends stopped at the destination.
                stop_at_destination: version.at_least(2, 95),
            },
        ))),
    )
    .await?;
    Ok(Outcome::Evacuated {
        admin_pass: (!version.at_least(2, 14))
            .then(|| admin_pass.unwrap_or_else(crate::domain::compute::admin_password)),
    })
}

/// `{"os-migrateLive": {"host": ..., "block_migration": ...}}` (admin).
pub async fn live_migrate(
    app: &App,
    ctx: &Context,
    request_id: &str,
    inst: &Arc<Instance>,
    body: &Value,
    version: ApiVersion,
) -> Result<Outcome, ApiError> {
    let l = object("os-migrateLive", body)?;
    let mut allowed = vec!["host", "block_migration"];
    if !version.at_least(2, 25) {
        allowed.push("disk_over_commit");
    }
    // `force` from 2.30 until 2.68 removed it.
    if version.at_least(2, 30) && !version.at_least(2, 68) {
        allowed.push("force");
    }
    only("os-migrateLive", l, &allowed)?;
    required("os-migrateLive", l, "block_migration")?;
    let host_v = required("os-migrateLive", l, "host")?;
    let host = match host_v {
        Value::Null => None,
        v => Some(validation::string("host", v, 1, 255)?.to_owned()),
    };
    admin_only(
        ctx,
        if host.is_some() {
            "os_compute_api:os-migrate-server:migrate_live:host"
        } else {
            "os_compute_api:os-migrate-server:migrate_live"
        },
    )?;
    if let Some(h) = &host {
        compute_host(app, h)?;
        if inst.host.as_deref() == Some(h.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unable to migrate instance ({}) to current host ({h}).",
                inst.id
            )));
        }
    }
    submit(
        app,
        ctx,
        request_id,
        inst,
        Event::Intent(novalog_schemas::Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: inst.id,
                migration_type: MigrationType::LiveMigration,
                flavor: None,
                host,
                source_host_down: false,
                auto_disk_config: None,
                stop_at_destination: false,
            },
        ))),
    )
    .await?;
    Ok(Outcome::Accepted)
}

/// The saga actions of `POST /servers/{id}/action`, by body key.
pub const ACTIONS: [&str; 7] = [
    "resize",
    "confirmResize",
    "revertResize",
    "migrate",
    "rebuild",
    "evacuate",
    "os-migrateLive",
];

/// Carries out the saga action `body` names, if it names one (`None`:
/// not a saga action; the caller's dispatcher goes on).
pub async fn dispatch(
    app: &App,
    ctx: &Context,
    request_id: &str,
    links: &crate::views::Links,
    version: ApiVersion,
    id: &str,
    body: &Value,
) -> Option<Result<axum::response::Response, ApiError>> {
    let obj = body.as_object()?;
    let (name, value) = obj.iter().find(|(k, _)| ACTIONS.contains(&k.as_str()))?;
    Some(run(app, ctx, request_id, links, version, id, obj, name, value).await)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    app: &App,
    ctx: &Context,
    request_id: &str,
    links: &crate::views::Links,
    version: ApiVersion,
    id: &str,
    obj: &serde_json::Map<String, Value>,
    name: &str,
    value: &Value,
) -> Result<axum::response::Response, ApiError> {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    if obj.len() > 1 {
        only("", obj, &[name])?;
    }
    let inst = crate::domain::compute::visible(app, ctx, id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    // The owner's actions (Nova's PROJECT_MEMBER_OR_ADMIN): a reader may
    // not; the others are administrators' and checked with their body.
    let owner_rule = match name {
        "resize" => Some("os_compute_api:servers:resize"),
        "confirmResize" => Some("os_compute_api:servers:confirm_resize"),
        "revertResize" => Some("os_compute_api:servers:revert_resize"),
        "rebuild" => Some("os_compute_api:servers:rebuild"),
        _ => None,
    };
    if let Some(rule) = owner_rule {
        crate::policy::authorize(
            ctx,
            crate::policy::Rule::OwnerOrAdmin(rule),
            Some(&inst.project_id),
        )?;
    }
    let outcome = match name {
        "resize" => resize(app, ctx, request_id, &inst, value).await?,
        "confirmResize" => confirm_resize(app, ctx, request_id, &inst, value).await?,
        "revertResize" => revert_resize(app, ctx, request_id, &inst, value).await?,
        "migrate" => migrate(app, ctx, request_id, &inst, value, version).await?,
        "rebuild" => rebuild(app, ctx, request_id, version, &inst, value).await?,
        "evacuate" => {
            evacuate(
                app,
                ctx,
                request_id,
                &inst,
                value,
                version,
                app.service_down_time_ms,
            )
            .await?
        }
        _ => live_migrate(app, ctx, request_id, &inst, value, version).await?,
    };
    Ok(match outcome {
        Outcome::Accepted => StatusCode::ACCEPTED.into_response(),
        Outcome::NoContent => StatusCode::NO_CONTENT.into_response(),
        Outcome::Evacuated { admin_pass } => match admin_pass {
            Some(p) => {
                (StatusCode::OK, Json(serde_json::json!({ "adminPass": p }))).into_response()
            }
            None => StatusCode::OK.into_response(),
        },
        Outcome::Rebuilt { admin_pass } => {
            use crate::controllers::servers::{groups_of, render, view_context};
            let inst = app.projection.instance(&inst.id).unwrap_or(inst);
            let cx = view_context(app, links, version, ctx, Some(&inst.project_id));
            let parts = crate::views::servers::Parts::rebuild(version, || groups_of(app, &inst.id));
            let mut server = render(app, &cx, &inst, &parts);
            server["adminPass"] = Value::String(admin_pass);
            if version.at_least(2, 57) {
                server["user_data"] = serde_json::json!(inst.user_data);
            }
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "server": server })),
            )
                .into_response()
        }
    })
}
