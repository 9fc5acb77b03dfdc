//! The delete saga: accepted from any state (it pre-empts a running task),
//! then the host destroys the guest and releases its claim, then DELETED.
//! An instance that never reached a host is deleted at once.
//!
//! Soft delete (`reclaim_instance_interval` > 0, Nova's deferred delete):
//! a DELETE of a launched server with no task is a soft delete its host
//! carries out (powered off, SOFT_DELETED, still counted by its quota);
//! `restore` brings it back, `forceDelete` deletes it at once, and
//! otherwise the [`crate::saga::Step::Reclaim`] deadline deletes it for real once the
//! interval has passed (a timer record on `intents`, so it survives a
//! restart).

use novalog_schemas::{
    ComputeCommand, Envelope, Event, InstanceEvent, Rejection, ServerAction, TaskState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::preconditions::{self, Caller};

pub(crate) fn on_delete(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    force: bool,
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
    let caller = Caller {
        is_admin: env.meta.actor.is_admin(),
        project_id: &env.meta.actor.project_id,
    };
    if force {
        // Nova's `force_delete`: any state, but not while a task runs.
        if let Err(refusal) = preconditions::check_rule(preconditions::FORCE_DELETE, i, caller) {
            return vec![Conductor::reject(
                env,
                id.to_string(),
                refusal.rejection("forceDelete", &id),
            )];
        }
    } else if c.settings.reclaim_instance_interval_s > 0
        && i.vm_state != VmState::SoftDeleted
        && i.host.is_some()
        && preconditions::check(&ServerAction::SoftDelete, i, caller).is_ok()
    {
        // Nova's API soft-deletes when it can and deletes otherwise (a
        // server never launched, or busy).
        return crate::server_actions::on_requested(c, env, id, &ServerAction::SoftDelete, now_ms);
    }
    start(c, env, id, now_ms)
}

/// The reclaim deadline of a SOFT_DELETED instance passed: it is deleted
/// for real (Nova's `_reclaim_queued_deletes`), unless it was restored or
/// is busy by now.
pub(crate) fn on_reclaim_due(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    now_ms: i64,
) -> Vec<Emit> {
    c.stop_awaiting(id);
    match c.instances.get(&id) {
        Some(i) if i.vm_state == VmState::SoftDeleted && i.task_state.is_none() => {
            start(c, env, id, now_ms)
        }
        _ => Vec::new(),
    }
}

/// The delete itself, whoever asked (checked by the caller).
fn start(c: &mut Conductor, env: &Envelope, id: Uuid, now_ms: i64) -> Vec<Emit> {
    let i = &c.instances[&id];
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
        out.extend(crate::snapshot::delete_image(
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
