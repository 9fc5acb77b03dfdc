//! Image members (`/v2/images/{id}/members`): the owner shares a `shared`
//! image with other projects, each member accepts or rejects it. Every
//! change is an `ImageChangeRequested` decided by the conductor on the
//! image as it is then ([`novalog_schemas::image::decide_change`]); the
//! reads and Glance's answers for an image without members are here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use novalog_request::{Context, RequestId};
use novalog_schemas::image::{self as rules, Action, Caller, ImageChange};
use novalog_schemas::{Image, ImageMember};
use serde_json::{Value, json};

use super::{GlanceError, Result, isotime, json_body};
use crate::{AppState, ImageError, images};

/// A member as Glance shows it.
pub fn member_view(image: &Image, m: &ImageMember) -> Value {
    json!({
        "member_id": m.member_id,
        "image_id": image.id,
        "status": m.status,
        "created_at": isotime(m.created_at_ms),
        "updated_at": isotime(m.updated_at_ms),
        "schema": "/v2/schemas/member",
    })
}

fn caller(ctx: &Context) -> Caller<'_> {
    Caller {
        project_id: &ctx.project_id,
        roles: &ctx.roles,
    }
}

/// `GET /v2/images/{id}/members`: every member for the owner (and an
/// administrator), a member's own membership for a member.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let image = images::find(&app, &ctx, &id)?;
    let refused = |why: &str| {
        GlanceError(ImageError::forbidden(format!(
            "Not allowed to list members for image {}: {why}",
            image.id
        )))
    };
    if image.visibility != "shared" {
        return Err(refused("Only shared images have members."));
    }
    let who = caller(&ctx);
    if !rules::allowed(Action::GetMembers, &who, Some(&image)) {
        return Err(refused(&format!(
            "You are not authorized to complete {} action.",
            Action::GetMembers.name()
        )));
    }
    let members: Vec<Value> = image
        .members
        .iter()
        .filter(|m| rules::find_member(&image, &m.member_id, &who).is_ok())
        .map(|m| member_view(&image, m))
        .collect();
    Ok(Json(json!({
        "members": members,
        "schema": "/v2/schemas/members",
    })))
}

/// `GET /v2/images/{id}/members/{member}`: 404 for one the caller may not
/// see, as Glance turns every refusal here into 404.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, member)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let image = images::find(&app, &ctx, &id)?;
    if image.visibility != "shared" {
        return Err(GlanceError(ImageError::not_found(
            "Only shared images have members.",
        )));
    }
    let m = rules::find_member(&image, &member, &caller(&ctx))?;
    Ok(Json(member_view(&image, m)))
}

/// `POST /v2/images/{id}/members` with `{"member": "<project>"}`: the new
/// member is pending.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let Value::Object(obj) = &body else {
        return Err(GlanceError(ImageError::bad_request(
            "Expected a member in the form: {\"member\": \"image_id\"}",
        )));
    };
    let member = match obj.get("member") {
        None => {
            return Err(GlanceError(ImageError::bad_request(
                "Member to be added not specified",
            )));
        }
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_) | Value::Null) => {
            return Err(GlanceError(ImageError::bad_request(
                "Member can't be empty",
            )));
        }
        Some(_) => {
            return Err(GlanceError(ImageError::bad_request(
                "Expected a member in the form: {\"member\": \"image_id\"}",
            )));
        }
    };
    let image = images::find(&app, &ctx, &id)?;
    let change = ImageChange::AddMember {
        member: member.clone(),
    };
    let done = images::change(&app, &ctx, &rid.0, &image, change).await?;
    let m = done
        .members
        .iter()
        .find(|m| m.member_id == member)
        .ok_or_else(|| GlanceError(ImageError::not_found("member not recorded")))?;
    Ok((StatusCode::OK, Json(member_view(&done, m))).into_response())
}

/// `PUT /v2/images/{id}/members/{member}` with `{"status": "accepted"}`:
/// only the member answers for itself.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path((id, member)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let Value::Object(obj) = &body else {
        return Err(GlanceError(ImageError::bad_request(
            "Expected a status in the form: {\"status\": \"status\"}",
        )));
    };
    let status = match obj.get("status") {
        None => {
            return Err(GlanceError(ImageError::bad_request("Status not specified")));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let image = images::find(&app, &ctx, &id)?;
    let change = ImageChange::SetMemberStatus {
        member: member.clone(),
        status,
    };
    let done = images::change(&app, &ctx, &rid.0, &image, change).await?;
    let m = rules::find_member(&done, &member, &caller(&ctx))?;
    Ok(Json(member_view(&done, m)))
}

/// `DELETE /v2/images/{id}/members/{member}`: the owner unshares; 204.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode> {
    let image = images::find(&app, &ctx, &id)?;
    images::change(
        &app,
        &ctx,
        &rid.0,
        &image,
        ImageChange::RemoveMember { member },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Glance's member schema (`glance/api/v2/image_members.py`).
pub fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            },
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": rules::MEMBER_STATUSES,
            },
            "schema": {"readOnly": true, "type": "string"},
        },
        "additionalProperties": false,
    })
}

/// Glance's collection schema around [`member_schema`].
pub fn members_schema() -> Value {
    json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

pub async fn schema_member() -> Json<Value> {
    Json(member_schema())
}

pub async fn schema_members() -> Json<Value> {
    Json(members_schema())
}
