//! Remote consoles (Nova's `get_vnc_console` and `os-console-auth-tokens`):
//! which console a request may have, the token made for it, and what a
//! token names.
//!
//! The token is made here, random (a v4 UUID, as Nova's), and only its
//! sha256 goes into the intent: the log, kept forever, never holds a token
//! that works. The conductor decides whether the server has a console now
//! and issues the token (`ConsoleTokenIssued`), which the console proxy
//! and this API's projection fold.

use novalog_schemas::console::{ConsoleToken, NOVNC, hash_token};
use novalog_schemas::{Event, InstanceEvent};
use uuid::Uuid;

use crate::auth::Context;
use crate::domain::Domain;
use crate::domain::compute;
use crate::domain::intents::Intent;
use crate::error::ApiError;
use crate::policy::{self, Rule};
use crate::projection::verdicts::Verdict;

/// `os_compute_api:os-remote-consoles`: the owner or an administrator.
pub const POLICY: &str = "os_compute_api:os-remote-consoles";
/// `os_compute_api:os-console-auth-tokens`: administrators.
pub const TOKENS_POLICY: &str = "os_compute_api:os-console-auth-tokens";

/// `[vnc]` as the API applies it.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// `[vnc] enabled`.
    pub vnc_enabled: bool,
    /// `[vnc] novncproxy_base_url`.
    pub novncproxy_base_url: String,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        let vnc = novalog_runtime::config_console::VncOptions::default();
        ConsoleSettings {
            vnc_enabled: vnc.enabled,
            novncproxy_base_url: vnc.novncproxy_base_url,
        }
    }
}

/// What a console request asks for: Nova's protocol (`vnc`, `spice`,
/// `rdp`, `serial`, `mks`) and console type (`novnc`, `xvpvnc`,
/// `spice-html5`, ...), both already valid for the microversion.
///
/// Only a VNC console of type `novnc` is served; Nova's answers for the
/// rest: a protocol whose console is not enabled is `ConsoleTypeUnavailable`
/// (`[spice]`, `[serial_console]`, `[mks]` and RDP are off, as Nova's
/// defaults are; `[vnc] enabled` decides VNC), a VNC console of another
/// type `ConsoleTypeInvalid`; both 400.
pub fn check_type(
    settings: &ConsoleSettings,
    protocol: &str,
    console_type: &str,
) -> Result<(), ApiError> {
    let unavailable = || ApiError::bad_request(format!("Unavailable console type {console_type}."));
    if protocol != "vnc" || !settings.vnc_enabled {
        return Err(unavailable());
    }
    if console_type != NOVNC {
        return Err(ApiError::bad_request(format!(
            "Invalid console type {console_type}"
        )));
    }
    Ok(())
}

/// The URL a token opens its console at: Nova's `access_url`, the token
/// in noVNC's `path` parameter.
pub fn access_url(base: &str, token: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}path=%3Ftoken%3D{token}")
}

/// A console for server `id`: its URL, with a token the conductor issued.
/// Nova's 404 (no such server for the caller), 403 (policy), 400 (console
/// type), then the conductor's 409 (no host yet, deleting or migrating, no
/// running guest with a display).
pub async fn create(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    id: &str,
    protocol: &str,
    console_type: &str,
) -> Result<String, ApiError> {
    let inst = compute::visible(app, ctx, id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    policy::authorize(ctx, Rule::OwnerOrAdmin(POLICY), Some(&inst.project_id))?;
    check_type(&app.consoles, protocol, console_type)?;
    let token = Uuid::new_v4().to_string();
    let intent = Intent {
        aggregate_id: inst.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ConsoleTokenRequested {
            instance_id: inst.id,
            token_hash: hash_token(&token),
            console_type: console_type.to_owned(),
        }),
    };
    let verdicts = app
        .intents
        .submit(ctx, request_id, &inst.project_id, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Rejected(r)) => Err(r.into()),
        Some(Verdict::Accepted(e))
            if matches!(*e, Event::Instance(InstanceEvent::ConsoleTokenIssued(_))) =>
        {
            Ok(access_url(&app.consoles.novncproxy_base_url, &token))
        }
        other => Err(ApiError::internal(format!(
            "unexpected verdict on a console request: {other:?}"
        ))),
    }
}

/// What token `token` names, for an administrator: Nova's 404 "Token not
/// found" for an unknown, expired or deleted server's token.
pub fn token(app: &Domain, ctx: &Context, token: &str) -> Result<ConsoleToken, ApiError> {
    policy::authorize(ctx, Rule::AdminOnly(TOKENS_POLICY), None)?;
    if token.is_empty() {
        return Err(ApiError::bad_request("token not provided"));
    }
    app.projection
        .console_token(&hash_token(token), novalog_schemas::now_ms())
        .ok_or_else(|| ApiError::not_found("Token not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enabled_vnc_of_type_novnc_is_served() {
        let on = ConsoleSettings::default();
        assert!(check_type(&on, "vnc", "novnc").is_ok());
        let msg = |r: Result<(), ApiError>| r.unwrap_err().to_string();
        assert!(msg(check_type(&on, "vnc", "xvpvnc")).contains("Invalid console type xvpvnc"));
        assert!(
            msg(check_type(&on, "spice", "spice-html5"))
                .contains("Unavailable console type spice-html5.")
        );
        assert!(
            msg(check_type(&on, "serial", "serial")).contains("Unavailable console type serial.")
        );
        let off = ConsoleSettings {
            vnc_enabled: false,
            ..on
        };
        assert!(msg(check_type(&off, "vnc", "novnc")).contains("Unavailable console type novnc."));
    }

    #[test]
    fn the_url_carries_the_token_in_novncs_path() {
        assert_eq!(
            access_url("http://127.0.0.1:6080/vnc_lite.html", "t-1"),
            "http://127.0.0.1:6080/vnc_lite.html?path=%3Ftoken%3Dt-1"
        );
        assert_eq!(
            access_url("http://h/vnc_lite.html?scale=1", "t"),
            "http://h/vnc_lite.html?scale=1&path=%3Ftoken%3Dt"
        );
    }
}
