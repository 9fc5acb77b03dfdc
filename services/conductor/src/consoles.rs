//! Remote consoles (Nova's `get_vnc_console` and consoleauth): where each
//! guest's VNC display listens, as its host reports it, and the console
//! tokens issued on it.
//!
//! A host reports a guest's display (`ConsoleEndpointReported`) before
//! the fact of the command that started the guest, so an instance that
//! became ACTIVE already has one here. A console request carries the
//! token's hash (the API made the token); it is decided at once: Nova's
//! `check_instance_host` and `reject_instance_state(task_state=[deleting,
//! migrating])`, then a running or paused guest whose display its current
//! host reported, else `InstanceNotReady`. The token is issued as a
//! `ConsoleTokenIssued` record (aggregate version 0: the instance does not
//! change) that expires `[consoleauth] token_ttl` after this decision.

use novalog_schemas::console::ConsoleToken;
use novalog_schemas::{Envelope, Event, Instance, InstanceEvent, PowerState, Rejection, TaskState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit};

/// A guest's display on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Display {
    pub host: String,
    pub address: String,
    pub port: u32,
}

/// A host's report of a guest's display: kept, or (port 0) forgotten
/// when it is the display on record for that host.
pub(crate) fn on_endpoint_reported(
    c: &mut Conductor,
    instance_id: Uuid,
    host: &str,
    address: &str,
    port: u32,
) -> Vec<Emit> {
    if port == 0 {
        if c.consoles.get(&instance_id).is_some_and(|d| d.host == host) {
            c.consoles.remove(&instance_id);
        }
        return Vec::new();
    }
    // A report about a deleted (or never known) instance is stale.
    if !c
        .instances
        .get(&instance_id)
        .is_some_and(|i| !i.is_deleted())
    {
        return Vec::new();
    }
    c.consoles.insert(
        instance_id,
        Display {
            host: host.to_owned(),
            address: address.to_owned(),
            port,
        },
    );
    Vec::new()
}

/// An instance is gone: its display with it.
pub(crate) fn forget(c: &mut Conductor, instance_id: Uuid) {
    c.consoles.remove(&instance_id);
}

/// Why no console: Nova's rejection.
pub fn check(i: &Instance, display: Option<&Display>) -> Result<Display, Rejection> {
    let id = i.id;
    let Some(host) = &i.host else {
        return Err(Rejection::conflict(format!("Instance {id} is not ready")));
    };
    if let Some(task @ (TaskState::Deleting | TaskState::Migrating)) = i.task_state {
        return Err(Rejection::invalid_state(
            "task_state",
            task.as_str(),
            "create",
            &id,
        ));
    }
    let running = matches!(i.power_state, PowerState::Running | PowerState::Paused);
    match display {
        Some(d) if running && &d.host == host => Ok(d.clone()),
        _ => Err(Rejection::conflict(format!("Instance {id} is not ready"))),
    }
}

pub(crate) fn on_requested(
    c: &mut Conductor,
    env: &Envelope,
    instance_id: Uuid,
    token_hash: &str,
    console_type: &str,
    now_ms: i64,
) -> Vec<Emit> {
    let actor = &env.meta.actor;
    let visible = c
        .instances
        .get(&instance_id)
        .filter(|i| !i.is_deleted() && (i.project_id == actor.project_id || actor.is_admin()));
    let Some(i) = visible else {
        return vec![Conductor::reject(
            env,
            instance_id.to_string(),
            Rejection::not_found(format!("Instance {instance_id} could not be found.")),
        )];
    };
    let display = match check(i, c.consoles.get(&instance_id)) {
        Ok(d) => d,
        Err(r) => return vec![Conductor::reject(env, instance_id.to_string(), r)],
    };
    let ttl_ms = c.settings.console_token_ttl_ms;
    let token = ConsoleToken {
        instance_id,
        token_hash: token_hash.to_owned(),
        console_type: console_type.to_owned(),
        host: display.host,
        address: display.address,
        port: display.port,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    };
    let mut meta = env.meta.caused("console-token", instance_id.to_string(), 0);
    meta.occurred_at_ms = now_ms;
    vec![Emit {
        dest: Dest::Instances,
        key: i.project_id.clone(),
        env: Envelope {
            meta,
            event: Event::Instance(InstanceEvent::ConsoleTokenIssued(Box::new(token))),
        },
    }]
}
