//! The web console at `/dashboard`: a page and its script, served from
//! this listener, that signs in with Identity v3 (`/identity/v3`) and
//! then speaks the public APIs (`/v2.1`, `/billing/v1`) with the token it
//! got, plus what only the console needs, under `/dashboard/api`, each
//! with the same token and the API's policy:
//!
//! - `GET /dashboard/api/events`: the caller's servers as server-sent
//!   events, followed from this replica's projection: a `snapshot` of
//!   every server it may see, then `changes` (servers added or changed,
//!   ids gone) after each applied batch that changed one; `expired`
//!   when the token no longer holds, and the stream ends. A member sees
//!   its project's servers, an administrator every project's.
//! - `GET /dashboard/api/servers/{id}/timeline`: every record of the log
//!   about the server in order (the same as `novalog-replay history`,
//!   [`novalog_history::select`]), the state after each, and its steps
//!   with their durations ([`novalog_history::timeline`]).
//! - `GET /dashboard/api/servers/{id}/actions`: the actions the server's
//!   state and the caller's policy allow now, the refused ones with the
//!   API's message.
//! - `GET /dashboard/api/audit?q=<request id | server id>`: every record
//!   a request caused, or about a server, across topics.
//! - `GET /dashboard/api/hosts` (administrators): capacity, usage and
//!   allocation ratios, up/down, enabled/disabled, zones, aggregates.
//!
//! A server of another project is a 404, as in the compute API. The
//! page, its script and its style are in `dashboard/` beside this
//! crate's sources; the chart library is embedded by `build.rs` from
//! what `scripts/deps.sh` installed. The page loads nothing from
//! anywhere but this listener (its Content-Security-Policy says so).

pub mod actions;
pub mod hosts;
pub mod live;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use novalog_history::timeline::{self, Point};
use novalog_history::{Entry, Subject};
use novalog_schemas::Instance;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{self, Context};
use crate::error::{ApiError, Result};
use crate::http::query_pairs;
use crate::policy::{Rule, authorize};

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");
const CHART: &str = include_str!(concat!(env!("OUT_DIR"), "/chart.umd.min.js"));

/// Nothing but this listener: scripts, styles, images and connections.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// How often an idle event stream checks that its token still holds.
const TOKEN_CHECK: Duration = Duration::from_secs(10);

/// The console's routes: the page and its assets without a token, the
/// rest with one.
pub fn routes(app: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/dashboard/api/events", get(events))
        .route("/dashboard/api/servers/{id}/timeline", get(server_timeline))
        .route("/dashboard/api/servers/{id}/actions", get(server_actions))
        .route("/dashboard/api/audit", get(audit))
        .route("/dashboard/api/hosts", get(host_rows))
        .route_layer(from_fn_with_state(app.auth.clone(), auth::require));
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route(
            "/dashboard/",
            get(|| asset("text/html; charset=utf-8", INDEX)),
        )
        .route(
            "/dashboard/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/dashboard/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/dashboard/vendor/chart.umd.min.js",
            get(|| asset("text/javascript; charset=utf-8", CHART)),
        )
        .merge(api)
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    if body.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The caller's servers, live. The stream holds the caller's token and
/// ends once it has expired or been revoked.
async fn events(
    State(app): State<AppState>,
    Extension(ctx): Extension<Context>,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    authorize(&ctx, Rule::ServersIndex, None)?;
    struct Follow {
        app: AppState,
        ctx: Context,
        headers: HeaderMap,
        applied: tokio::sync::watch::Receiver<crate::projection::Offsets>,
        /// What the client has been sent; `None` before the snapshot.
        sent: Option<live::Rows>,
        done: bool,
    }
    let applied = app.projection.watch_applied();
    let start = Follow {
        app,
        ctx,
        headers,
        applied,
        sent: None,
        done: false,
    };
    let stream = futures::stream::unfold(start, |mut f| async move {
        if f.done {
            return None;
        }
        loop {
            if f.app.auth.authenticate(&f.headers).is_none() {
                f.done = true;
                let e = SseEvent::default().event("expired").data("{}");
                return Some((Ok::<_, Infallible>(e), f));
            }
            let now = live::rows(
                &f.ctx,
                f.app
                    .projection
                    .instances(live::scope(&f.ctx))
                    .iter()
                    .map(|i| &**i),
            );
            let event = match &f.sent {
                None => Some(
                    SseEvent::default()
                        .event("snapshot")
                        .json_data(json!({"servers": now.values().collect::<Vec<_>>()})),
                ),
                Some(before) => {
                    let changes = live::diff(before, &now);
                    (!changes.is_empty())
                        .then(|| SseEvent::default().event("changes").json_data(&changes))
                }
            };
            if let Some(Ok(e)) = event {
                f.sent = Some(now);
                return Some((Ok(e), f));
            }
            // Wait for the next applied batch, or look at the token again;
            // end when the listener stops.
            let mut closing = f.app.closing.clone();
            tokio::select! {
                () = closing.wait() => return None,
                changed = tokio::time::timeout(TOKEN_CHECK, f.applied.changed()) => {
                    if let Ok(Err(_)) = changed {
                        return None; // the projection is gone
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Server `id` if `ctx` may see it (deleted ones too: their history
/// stays), else Nova's 404.
fn server(app: &AppState, ctx: &Context, id: &str) -> Result<Arc<Instance>> {
    let missing = || ApiError::not_found(format!("Instance {id} could not be found."));
    let uuid = Uuid::parse_str(id).map_err(|_| missing())?;
    app.projection
        .instance_with_deleted(&uuid)
        .filter(|i| live::visible(ctx, i))
        .ok_or_else(missing)
}

/// The log's records about `subject`, read from this replica's log.
async fn history(app: &AppState, subject: &Subject) -> Result<Vec<Entry>> {
    let topics: Vec<String> = app.topics.all().into_iter().map(str::to_owned).collect();
    let all = novalog_history::read_all(app.log.as_ref(), &topics)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read the log: {e}")))?;
    Ok(novalog_history::select(all, subject, &app.topics.instances))
}

/// The JSON form of an entry for the console.
fn entry_json(app: &AppState, e: &Entry) -> Value {
    let m = &e.env.meta;
    let topic = e
        .record
        .topic
        .strip_prefix(&app.topics.namespace)
        .unwrap_or(&e.record.topic);
    let type_name = e.env.event.type_name();
    let mut v = json!({
        "at_ms": m.occurred_at_ms,
        "topic": topic,
        "position": format!("{topic}/{}/{}", e.record.partition, e.record.offset),
        "type": type_name,
        "mark": timeline::mark(type_name),
        "event_id": m.event_id,
        "request_id": m.correlation_id,
        "actor": {"user_id": m.actor.user_id, "project_id": m.actor.project_id, "roles": m.actor.roles},
        "aggregate_id": m.aggregate_id,
    });
    if let Some(s) = &e.state {
        v["vm_state"] = json!(s.vm_state);
        v["task_state"] = json!(s.task_state);
        v["power_state"] = json!(s.power_state);
        v["host"] = json!(s.host);
    }
    v
}

/// The entries as `ctx` may see them: hosts only for administrators.
fn entries_json(app: &AppState, ctx: &Context, entries: &[Entry]) -> Vec<Value> {
    entries
        .iter()
        .map(|e| {
            let mut v = entry_json(app, e);
            if !ctx.is_admin
                && let Some(o) = v.as_object_mut()
            {
                o.remove("host");
            }
            v
        })
        .collect()
}

async fn server_timeline(
    State(app): State<AppState>,
    Extension(ctx): Extension<Context>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    authorize(&ctx, Rule::ServersShow, None)?;
    let inst = server(&app, &ctx, &id)?;
    let entries = history(&app, &Subject::Server(inst.id)).await?;
    let points: Vec<Point> = entries.iter().map(Point::of).collect();
    let now = novalog_schemas::now_ms();
    let steps: Vec<Value> = timeline::steps(&points)
        .into_iter()
        .map(|s| {
            let d = s.duration_ms(now);
            let mut v = json!(s);
            v["duration_ms"] = json!(d);
            v
        })
        .collect();
    Ok(Json(json!({
        "server": live::ServerRow::of(&inst, &ctx),
        "now_ms": now,
        "events": entries_json(&app, &ctx, &entries),
        "steps": steps,
    })))
}

async fn server_actions(
    State(app): State<AppState>,
    Extension(ctx): Extension<Context>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = server(&app, &ctx, &id)?;
    Ok(Json(json!({
        "server": live::ServerRow::of(&inst, &ctx),
        "actions": actions::offers(&ctx, &inst),
    })))
}

/// `q`: a request id (`req-...`) or a server id. A member sees only
/// what its own project's requests and servers caused.
async fn audit(
    State(app): State<AppState>,
    Extension(ctx): Extension<Context>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let q = query_pairs(raw.as_deref())
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let subject = match Subject::parse(&q) {
        s @ Subject::Request(_) => s,
        Subject::Server(id) => Subject::Server(server(&app, &ctx, &id.to_string())?.id),
        Subject::Project(_) => {
            return Err(ApiError::bad_request(
                "q must be a request id (req-...) or a server id",
            ));
        }
    };
    let mut entries = history(&app, &subject).await?;
    if !ctx.is_admin && matches!(subject, Subject::Request(_)) {
        entries.retain(|e| e.env.meta.actor.project_id == ctx.project_id);
    }
    if entries.is_empty() {
        return Err(ApiError::not_found(format!("no record concerns {q}")));
    }
    Ok(Json(json!({
        "subject": q,
        "events": entries_json(&app, &ctx, &entries),
    })))
}

async fn host_rows(
    State(app): State<AppState>,
    Extension(ctx): Extension<Context>,
) -> Result<Json<Value>> {
    authorize(
        &ctx,
        Rule::AdminOnly("os_compute_api:os-hypervisors:list"),
        None,
    )?;
    let rows = hosts::rows(
        &app.projection.hosts(),
        &app.projection.aggregates(),
        app.allocation_ratios,
        novalog_schemas::now_ms(),
        app.service_down_time_ms,
    );
    Ok(Json(json!({
        "ratios": app.allocation_ratios,
        "hosts": rows,
    })))
}
