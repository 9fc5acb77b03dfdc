//! `/v2.1/os-keypairs`: a user's public keys. Microversions: 2.2 `type`
//! and 201/204 statuses, 2.10 `user_id` (administrators act for other
//! users), 2.35 paging (`limit`, `marker`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use novalog_schemas::events::Keypair;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::keypair_api::{self, KeypairCreate, TYPE_SSH, TYPE_X509};
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::validation::query;
use crate::validation::{self, invalid, repr};
use crate::views::{Links, usage_time};

/// The user a request acts for: `?user_id=` from 2.10, else the caller.
fn user_of(ctx: &Context, params: &[(String, String)], version: ApiVersion) -> String {
    params
        .iter()
        .find(|(k, _)| k == "user_id")
        .filter(|_| version.at_least(2, 10))
        .map_or_else(|| ctx.user_id.clone(), |(_, v)| v.clone())
}

/// The fields every view has; `type` from 2.2.
fn base(k: &Keypair, version: ApiVersion) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(k.name));
    m.insert("public_key".into(), json!(k.public_key));
    m.insert("fingerprint".into(), json!(k.fingerprint));
    if version.at_least(2, 2) {
        m.insert("type".into(), json!(k.key_type));
    }
    m
}

/// Parses `POST /os-keypairs` as the version's schema allows.
pub fn parse_create(
    ctx: &Context,
    body: &Value,
    version: ApiVersion,
) -> Result<KeypairCreate, ApiError> {
    let top = validation::object("", body)?;
    validation::only("", top, &["keypair"])?;
    let kp = validation::required("", top, "keypair")?;
    let kp = validation::object("keypair", kp)?;
    let mut allowed = vec!["name", "public_key"];
    if version.at_least(2, 2) {
        allowed.push("type");
    }
    if version.at_least(2, 10) {
        allowed.push("user_id");
    }
    validation::only("keypair", kp, &allowed)?;
    let name = validation::name("keypair/name", validation::required("keypair", kp, "name")?)?;
    let public_key = match kp.get("public_key") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| {
                    invalid(
                        "keypair/public_key",
                        v,
                        format!("{} is not of type 'string'", repr(v)),
                    )
                })?
                .to_owned(),
        ),
    };
    // Generation went away in 2.92.
    if public_key.is_none() && version.at_least(2, 92) {
        return Err(invalid(
            "keypair",
            &Value::Object(kp.clone()),
            "'public_key' is a required property",
        ));
    }
    let key_type = match kp.get("type") {
        None => TYPE_SSH.to_owned(),
        Some(v) => match v.as_str() {
            Some(t @ (TYPE_SSH | TYPE_X509)) => t.to_owned(),
            _ => {
                return Err(invalid(
                    "keypair/type",
                    v,
                    format!("{} is not one of ['ssh', 'x509']", repr(v)),
                ));
            }
        },
    };
    // Nova's `user_id` parameter type: 1 to 255 characters. Nova's create
    // schema leaves the length open, but a keypair with no owner cannot be
    // recorded (the record would not decode), so an empty one is refused
    // here, as issue 9 asks, rather than by a dead letter.
    let user_id = match kp.get("user_id") {
        None => ctx.user_id.clone(),
        Some(v) => validation::string("keypair/user_id", v, 1, 255)?.to_owned(),
    };
    Ok(KeypairCreate {
        name,
        key_type,
        public_key,
        user_id,
        version,
    })
}

/// `POST /os-keypairs`: 200 at 2.1, 201 from 2.2.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let req = parse_create(&ctx, &body, version)?;
    let created = keypair_api::create(&app, &ctx, &request_id, req).await?;
    let mut m = base(&created.keypair, version);
    m.insert("user_id".into(), json!(created.keypair.user_id));
    if let Some(private) = created.private_key {
        m.insert("private_key".into(), json!(private));
    }
    let status = if version.at_least(2, 2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"keypair": m}))).into_response())
}

/// `GET /os-keypairs`: the user's keypairs by name; from 2.35 paged.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query::KEYPAIRS.check(query_pairs(q.as_deref()), version, ctx.is_admin)?;
    let user_id = user_of(&ctx, &params, version);
    keypair_api::authorize(&ctx, "index", &user_id)?;
    let mut found = app.projection.keypairs(&user_id);
    let mut limit = None;
    if version.at_least(2, 35) {
        for (k, v) in &params {
            match k.as_str() {
                "limit" => {
                    let n = query::non_negative(v).ok_or_else(|| {
                        invalid(
                            "limit",
                            &json!(v),
                            format!("{} does not match '^[0-9]*$'", repr(&json!(v))),
                        )
                    })?;
                    limit = Some(n);
                }
                "marker" => {
                    let pos = found.iter().position(|k| &k.name == v).ok_or_else(|| {
                        ApiError::bad_request(format!("Marker {v} could not be found."))
                    })?;
                    found.drain(..=pos);
                }
                _ => {}
            }
        }
    }
    // Nova pages keypairs from 2.35 only.
    if version.at_least(2, 35) {
        found.truncate(crate::paging::page_size(limit, app.max_limit));
    }
    let list: Vec<Value> = found
        .iter()
        .map(|k| json!({"keypair": base(k, version)}))
        .collect();
    let mut body = json!({"keypairs": list});
    if version.at_least(2, 35)
        && let Some(next) = crate::paging::next_links(
            &links,
            &params,
            "os-keypairs",
            found.len(),
            found.last().map(|k| k.name.as_str()),
            app.max_limit,
        )
    {
        body["keypairs_links"] = next;
    }
    Ok(Json(body))
}

/// `GET /os-keypairs/{name}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let user_id = user_of(&ctx, &query_pairs(q.as_deref()), version);
    keypair_api::authorize(&ctx, "show", &user_id)?;
    let k = keypair_api::find(&app, &user_id, &name)?;
    let mut m = base(&k, version);
    m.insert("user_id".into(), json!(k.user_id));
    m.insert("id".into(), json!(k.id));
    m.insert("created_at".into(), json!(usage_time(k.created_at_ms)));
    m.insert("updated_at".into(), Value::Null);
    m.insert("deleted_at".into(), Value::Null);
    m.insert("deleted".into(), json!(false));
    Ok(Json(json!({"keypair": m})))
}

/// `DELETE /os-keypairs/{name}`: 202 at 2.1, 204 from 2.2.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode> {
    let user_id = user_of(&ctx, &query_pairs(q.as_deref()), version);
    keypair_api::delete(&app, &ctx, &request_id, &user_id, &name).await?;
    Ok(if version.at_least(2, 2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}
