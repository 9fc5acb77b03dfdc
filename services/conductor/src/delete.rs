//! The delete saga: accepted from any state (it pre-empts a running task),
//! then the host destroys the guest and releases its claim, then DELETED.
//! An instance that never reached a host is deleted at once.

use novalog_schemas::{ComputeCommand, Envelope, Event, InstanceEvent, Rejection, TaskState};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};

pub(crate) fn on_delete(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    _force: bool,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::not_found(format!("Instance {id} could not be found.")),
        )];
    };
    if i.is_deleted() {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::not_found(format!("Instance {id} could not be found.")),
        )];
    }
    // Another project's server does not exist for this caller.
    if i.project_id != env.meta.actor.project_id && !env.meta.actor.is_admin() {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::not_found(format!("Instance {id} could not be found.")),
        )];
    }
    // Nova's check_instance_lock on delete.
    if i.is_locked() && !env.meta.actor.is_admin() {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::conflict(format!("Instance {id} is locked")),
        )];
    }
    if i.task_state == Some(TaskState::Deleting) {
        return Vec::new(); // already being deleted; the API answers 204 itself
    }
    let project = i.project_id.clone();
    let host = i.host.clone();
    // Nova deletes a shelved server's snapshot with it.
    let shelved_image = i.shelved_image_id;
    // Every other host an unfinished migration involves holds a claim (or
    // a guest) for the instance too: it destroys and releases as well.
    let others: Vec<String> = i
        .migration()
        .map(|m| {
            std::iter::once(m.source_compute.clone())
                .chain(m.dest_compute.clone())
                .filter(|h| Some(h) != host.as_ref())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .unwrap_or_default();
    c.stop_awaiting(id);
    let mut out = vec![c.instance_event(
        &env.meta,
        "deleting",
        id,
        &project,
        Event::Instance(InstanceEvent::InstanceDeleteStarted),
    )];
    for other in others {
        out.push(emit(
            Dest::Compute,
            other.clone(),
            &env.meta,
            &format!("destroy-{other}"),
            id.to_string(),
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: id,
                host: other,
            }),
        ));
    }
    match host {
        Some(host) => out.push(emit(
            Dest::Compute,
            host.clone(),
            &env.meta,
            "destroy",
            id.to_string(),
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: id,
                host,
            }),
        )),
        None => out.push(c.instance_event(
            &env.meta,
            "deleted",
            id,
            &project,
            Event::Instance(InstanceEvent::InstanceDeleted {
                deleted_at_ms: now_ms,
            }),
        )),
    }
    if let Some(image) = shelved_image {
        out.extend(crate::shelve::delete_image(
            c,
            env,
            image,
            "shelved-image-deleted",
        ));
    }
    out
}

pub(crate) fn on_destroyed(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    host: &str,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if i.task_state != Some(TaskState::Deleting) || i.host.as_deref() != Some(host) {
        return Vec::new();
    }
    let project = i.project_id.clone();
    vec![c.instance_event(
        &env.meta,
        "deleted",
        id,
        &project,
        Event::Instance(InstanceEvent::InstanceDeleted {
            deleted_at_ms: now_ms,
        }),
    )]
}
