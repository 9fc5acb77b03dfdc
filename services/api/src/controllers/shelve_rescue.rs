//! The actions that take a server off its host and back, or boot it from
//! another image: `shelve`, `shelveOffload`, `unshelve` (Nova's
//! ShelveController) and `rescue`, `unrescue` (RescueController). Each
//! validates its body as Nova's schema for the microversion does, checks
//! Nova's default policy (the owner or an administrator; `shelveOffload`
//! and unshelving to a named host: administrators), and asks the
//! conductor, whose verdict carries Nova's 409s on state and lock.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use novalog_schemas::ServerAction;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::App;
use crate::auth::Context;
use crate::domain::compute::{self, ActionRequest};
use crate::error::{ApiError, Result};
use crate::microversion::ApiVersion;
use crate::validation::{self, invalid, object, only};

const ACTIONS: &[&str] = &["shelve", "shelveOffload", "unshelve", "rescue", "unrescue"];

/// The answer to one of these actions, or `None` when the body names
/// none of them.
pub async fn dispatch(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    id: &str,
    body: &Value,
) -> Option<Result<Response>> {
    let obj = body.as_object()?;
    let (name, value) = obj.iter().find(|(k, _)| ACTIONS.contains(&k.as_str()))?;
    Some(run(app, ctx, request_id, version, id, obj, name, value).await)
}

fn admin_only(ctx: &Context, rule: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    id: &str,
    obj: &serde_json::Map<String, Value>,
    name: &str,
    value: &Value,
) -> Result<Response> {
    if obj.len() > 1 {
        only("", obj, &[name])?;
    }
    let accepted = || StatusCode::ACCEPTED.into_response();
    match name {
        // Nova's schemas take any value for these three.
        "shelve" => {
            let req = ActionRequest {
                action: ServerAction::Shelve { image_id: None },
                policy: "os_compute_api:os-shelve:shelve",
            };
            compute::act(app, ctx, request_id, id, req).await?;
            Ok(accepted())
        }
        "shelveOffload" => {
            let rule = "os_compute_api:os-shelve:shelve_offload";
            compute::visible(app, ctx, id)
                .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
            admin_only(ctx, rule)?;
            let req = ActionRequest {
                action: ServerAction::ShelveOffload,
                policy: rule,
            };
            compute::act(app, ctx, request_id, id, req).await?;
            Ok(accepted())
        }
        "unrescue" => {
            let req = ActionRequest {
                action: ServerAction::Unrescue,
                policy: "os_compute_api:os-unrescue",
            };
            compute::act(app, ctx, request_id, id, req).await?;
            Ok(accepted())
        }
        "unshelve" => {
            let (availability_zone, host) = unshelve_args(value, version)?;
            let inst = compute::authorized(
                app,
                ctx,
                id,
                crate::policy::Rule::OwnerOrAdmin("os_compute_api:os-shelve:unshelve"),
            )?;
            if let Some(Some(az)) = &availability_zone
                && !app.projection.availability_zones().contains(az)
            {
                return Err(ApiError::bad_request(
                    "The requested availability zone is not available",
                ));
            }
            if let Some(h) = &host {
                admin_only(ctx, "os_compute_api:os-shelve:unshelve_to_host")?;
                let view = app.projection.host(h).ok_or_else(|| {
                    ApiError::bad_request(format!("Compute host {h} could not be found."))
                })?;
                // The zone the server will be in: the one asked for, else
                // the one it is pinned to (Nova's UnshelveHostNotInAZ).
                let zone = match &availability_zone {
                    Some(az) => az.clone(),
                    None => inst.availability_zone.clone(),
                };
                if let Some(zone) = zone
                    && view.availability_zone != zone
                {
                    return Err(ApiError::conflict(format!(
                        "Host \"{h}\" is not in the availability zone \"{zone}\"."
                    )));
                }
            }
            let req = ActionRequest {
                action: ServerAction::Unshelve {
                    availability_zone,
                    host,
                },
                policy: "os_compute_api:os-shelve:unshelve",
            };
            compute::act(app, ctx, request_id, id, req).await?;
            Ok(accepted())
        }
        "rescue" => {
            let (admin_pass, image_id) = rescue_args(value)?;
            let req = ActionRequest {
                action: ServerAction::Rescue { image_id },
                policy: "os_compute_api:os-rescue",
            };
            compute::act(app, ctx, request_id, id, req).await?;
            // Nova answers 200 with the password ([api]
            // enable_instance_password, on by default); 2.87's stable
            // device rescue changes nothing for an image-backed server.
            let pass = admin_pass.unwrap_or_else(compute::admin_password);
            Ok((StatusCode::OK, Json(json!({"adminPass": pass}))).into_response())
        }
        _ => Err(ApiError::bad_request(format!(
            "There is no such action: {name}"
        ))),
    }
}

/// `unshelve`'s body by microversion: any value before 2.77; from 2.77
/// `null` or `{"availability_zone": name}`; from 2.91 also `host`, and a
/// `null` zone (unpin). Returns the zone change and the host.
pub fn unshelve_args(
    value: &Value,
    version: ApiVersion,
) -> Result<(Option<Option<String>>, Option<String>)> {
    if !version.at_least(2, 77) || value.is_null() {
        return Ok((None, None));
    }
    let v291 = version.at_least(2, 91);
    let o = if value.is_object() {
        value.as_object().expect("object")
    } else {
        return Err(invalid(
            "unshelve",
            value,
            format!(
                "{} is not of type 'object', 'null'",
                validation::repr(value)
            ),
        ));
    };
    if v291 {
        only("unshelve", o, &["availability_zone", "host"])?;
    } else {
        only("unshelve", o, &["availability_zone"])?;
        if !o.contains_key("availability_zone") {
            return Err(invalid(
                "unshelve",
                value,
                "'availability_zone' is a required property",
            ));
        }
    }
    let availability_zone = match o.get("availability_zone") {
        None => None,
        Some(Value::Null) if v291 => Some(None),
        Some(v) => Some(Some(validation::name("availability_zone", v)?)),
    };
    let host = match o.get("host") {
        None => None,
        Some(v) => Some(validation::string("host", v, 1, 255)?.to_owned()),
    };
    Ok((availability_zone, host))
}

/// `rescue`'s body: `null`, or `{"adminPass": ..., "rescue_image_ref":
/// uuid}`.
pub fn rescue_args(value: &Value) -> Result<(Option<String>, Option<Uuid>)> {
    if value.is_null() {
        return Ok((None, None));
    }
    let o = object("rescue", value)?;
    only("rescue", o, &["adminPass", "rescue_image_ref"])?;
    let pass = o
        .get("adminPass")
        .map(|v| validation::string("adminPass", v, 0, 255).map(str::to_owned))
        .transpose()?;
    let image = match o.get("rescue_image_ref") {
        None => None,
        Some(v) => {
            let s = validation::string("rescue_image_ref", v, 0, 255)?;
            Some(Uuid::parse_str(s).map_err(|_| {
                invalid(
                    "rescue_image_ref",
                    v,
                    format!("{} is not a 'uuid'", validation::repr(v)),
                )
            })?)
        }
    };
    Ok((pass, image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshelve_bodies_follow_the_microversion() {
        let v = ApiVersion::new;
        let az = json!({"availability_zone": "az1"});
        assert_eq!(unshelve_args(&az, v(2, 76)).unwrap(), (None, None));
        assert_eq!(
            unshelve_args(&az, v(2, 77)).unwrap(),
            (Some(Some("az1".into())), None)
        );
        assert!(unshelve_args(&json!({}), v(2, 77)).is_err());
        assert!(unshelve_args(&json!({"host": "h"}), v(2, 77)).is_err());
        assert!(unshelve_args(&json!({"availability_zone": null}), v(2, 90)).is_err());
        assert_eq!(
            unshelve_args(&json!({"availability_zone": null, "host": "h"}), v(2, 91)).unwrap(),
            (Some(None), Some("h".into()))
        );
        assert_eq!(unshelve_args(&Value::Null, v(2, 91)).unwrap(), (None, None));
    }

    #[test]
    fn rescue_bodies() {
        assert_eq!(rescue_args(&Value::Null).unwrap(), (None, None));
        let id = Uuid::new_v4();
        assert_eq!(
            rescue_args(&json!({"adminPass": "p", "rescue_image_ref": id.to_string()})).unwrap(),
            (Some("p".into()), Some(id))
        );
        assert!(rescue_args(&json!({"rescue_image_ref": "nope"})).is_err());
        assert!(rescue_args(&json!({"other": 1})).is_err());
    }
}
