//! `os-getConsoleOutput`: a read the API asks of the instance's host, as
//! Nova's API calls its compute service and waits for the answer.
//!
//! The intent ([`Intent::ConsoleOutputRequested`]) is checked here as
//! Nova's `get_console_output` checks it (the caller sees the server;
//! `check_instance_host`: it has a host, else 409 "is not ready"), then
//! becomes a `GetConsoleOutput` command to that host naming the intent.
//! The host reads its driver's console log and answers on
//! `compute-events`; the answer comes back to `instances` as a record
//! *caused by the intent* — the API's verdict — a
//! [`InstanceEvent::ConsoleOutputRead`], or the rejection Nova answers
//! (404 `ConsoleNotAvailable`). Nothing about the instance changes. A host
//! that does not answer leaves the API to time out (its 504).
//!
//! [`Intent::ConsoleOutputRequested`]: novalog_schemas::Intent::ConsoleOutputRequested

use novalog_schemas::{ComputeCommand, Envelope, Event, InstanceEvent, Rejection};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};

pub(crate) fn on_requested(
    c: &Conductor,
    env: &Envelope,
    id: Uuid,
    length: Option<i64>,
) -> Vec<Emit> {
    let actor = &env.meta.actor;
    let Some(i) = c
        .instances
        .get(&id)
        .filter(|i| !i.is_deleted() && (i.project_id == actor.project_id || actor.is_admin()))
    else {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::not_found(format!("Instance {id} could not be found.")),
        )];
    };
    let Some(host) = i.host.clone() else {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::conflict(format!("Instance {id} is not ready")),
        )];
    };
    vec![emit(
        Dest::Compute,
        host.clone(),
        &env.meta,
        "get-console-output",
        id.to_string(),
        Event::Compute(ComputeCommand::GetConsoleOutput {
            instance_id: id,
            host,
            length,
            request_id: env.meta.event_id,
        }),
    )]
}

/// The host's answer, relayed as the verdict on intent `request_id`.
pub(crate) fn on_fetched(
    c: &Conductor,
    env: &Envelope,
    id: Uuid,
    request_id: Uuid,
    output: &str,
    error: Option<&str>,
) -> Vec<Emit> {
    let project = c
        .instances
        .get(&id)
        .map(|i| i.project_id.clone())
        .unwrap_or_default();
    let mut meta = env.meta.caused("console-output", id.to_string(), 0);
    // The verdict names the intent it answers.
    meta.causation_id = Some(request_id);
    meta.event_id = Uuid::new_v5(&request_id, b"console-output");
    let event = match error {
        None => InstanceEvent::ConsoleOutputRead {
            output: output.to_owned(),
        },
        Some(message) => InstanceEvent::IntentRejected {
            intent_type: "ConsoleOutputRequested".into(),
            kind: Rejection::not_found(message).kind,
            message: message.to_owned(),
        },
    };
    vec![Emit {
        dest: Dest::Instances,
        key: project,
        env: Envelope {
            meta,
            event: Event::Instance(event),
        },
    }]
}
