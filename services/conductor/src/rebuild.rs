//! The rebuild saga: REBUILDING → REBUILD_SPAWNING → ACTIVE on the same
//! host, with the new (or the same) image; name, metadata and addresses are
//! kept unless the request changes the name or the metadata. A stopped
//! instance is stopped again afterwards, as in Nova; one in ERROR becomes
//! ACTIVE. The host's claim does not change (same flavor).
//!
//! A failed spawn or a host that does not answer in time leaves the
//! instance in ERROR with a fault naming the step; the claim stays with
//! the instance, which is still on its host (delete releases it).
//!
//! One step, [`Step::Rebuild`] (`rebuild:rebuild`): its answers and what
//! undoes it are [`row`], which [`on_fact`] and [`on_timeout`] follow.

use std::convert::Infallible;

use novalog_schemas::migration::{
    MigrationCommand, MigrationFact, RebuildSpec, ServerRebuildRequested,
};
use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, InstanceEvent, PowerState, Rejection, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::migration::{check_state, step_fault, visible};
use crate::saga::{Answer, Row, Side, Step, Then};
use crate::timers::{Awaiting, timeout_fault};

/// The end of a rebuild that worked: RebuildCompleted, ACTIVE (or
/// stopped again, as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rebuilt;

/// What a failed or silent rebuild leads to: ERROR with a fault naming
/// the step; nothing to undo (same host, same claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

/// The rebuild as a table (one step: nothing follows it, hence
/// [`Infallible`]): the instance's own host, the driver step it names
/// when it fails, each answer and what follows it, and what follows
/// silence past the deadline.
fn row() -> Row<Infallible, Rebuilt, Failed> {
    use Answer as A;
    use Then::{Done, Progress, Recover};
    Row {
        host: Side::Source,
        driver_step: Some("rebuild"),
        answers: &[
            (A::SpawnStarted, Progress),
            (A::Rebuilt, Done(Rebuilt)),
            (A::StepFailed, Recover(Failed)),
        ],
        timed_out: Recover(Failed),
    }
}

fn rebuild_id(env: &Envelope) -> Uuid {
    Uuid::new_v5(&env.meta.event_id, b"rebuild")
}

/// Nova's image-against-flavor checks (FlavorDiskTooSmall,
/// FlavorMemoryTooSmall).
pub fn check_image_fits(
    image: &novalog_schemas::Image,
    flavor: &novalog_schemas::Flavor,
) -> Result<(), String> {
    // Sizes in bytes as u128: GiB counts up to u64::MAX times 2^30 fit,
    // so no user's number can overflow them.
    const GIB: u128 = 1024 * 1024 * 1024;
    if flavor.disk_gb > 0 {
        let flavor_bytes = u128::from(flavor.disk_gb) * GIB;
        if u128::from(image.size) > flavor_bytes {
            return Err(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {flavor_bytes} bytes, image is {} bytes.",
                image.size
            ));
        }
        if image.min_disk > flavor.disk_gb {
            return Err(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {flavor_bytes} bytes, minimum required disk is {} bytes.",
                u128::from(image.min_disk) * GIB
            ));
        }
    }
    if image.min_ram > flavor.ram_mb {
        return Err("Flavor's memory is too small for requested image.".to_owned());
    }
    Ok(())
}

pub(crate) fn on_request(
    c: &mut Conductor,
    env: &Envelope,
    req: &ServerRebuildRequested,
    now_ms: i64,
) -> Vec<Emit> {
    let id = req.instance_id;
    let i = match visible(c, env, id) {
        Ok(i) => i,
        Err(e) => return vec![*e],
    };
    let reject = |r: Rejection| vec![Conductor::reject(env, id.to_string(), r)];
    if c.awaiting
        .get(&id)
        .is_some_and(|a| a.operation_id == Some(rebuild_id(env)))
    {
        return Vec::new(); // redelivered intent
    }
    if let Err(r) = check_state(
        "rebuild",
        env,
        i,
        &[VmState::Active, VmState::Stopped, VmState::Error],
        true,
    ) {
        return reject(r);
    }
    let image = match c.images.get(&req.image.id) {
        Some(im) if im.status == "active" => im.clone(),
        Some(_) => {
            return reject(Rejection::invalid(format!(
                "Image {} is not active.",
                req.image.id
            )));
        }
        None => return reject(Rejection::invalid("Cannot find image for rebuild")),
    };
    if let Err(m) = check_image_fits(&image, &i.flavor) {
        return reject(Rejection::invalid(m));
    }
    let Some(host) = i.host.clone() else {
        return reject(crate::migration::invalid_state("rebuild", id, i));
    };
    let original = i.vm_state;
    let spec = RebuildSpec {
        image: image.clone(),
        name: req.name.clone().unwrap_or_else(|| i.name.clone()),
        metadata: req.metadata.clone().unwrap_or_else(|| i.metadata.clone()),
        key_name: req.key_name.clone().unwrap_or_else(|| i.key_name.clone()),
        user_data: req.user_data.clone().unwrap_or_else(|| i.user_data.clone()),
        description: req
            .description
            .clone()
            .unwrap_or_else(|| i.description.clone()),
        access: Some(req.access.applied_to(i.access)),
        trusted_image_certificates: req
            .trusted_image_certificates
            .clone()
            .unwrap_or_else(|| i.trusted_image_certificates.clone()),
        hostname: Some(req.hostname.clone().unwrap_or_else(|| i.hostname.clone())),
    };
    let project = i.project_id.clone();
    let flavor = i.flavor.clone();
    let started = c.instance_event(
        &env.meta,
        "rebuild-started",
        id,
        &project,
        Event::Instance(InstanceEvent::RebuildStarted(Box::new(spec.clone()))),
    );
    let op = rebuild_id(env);
    let cmd = emit(
        Dest::Compute,
        host.clone(),
        &env.meta,
        "rebuild",
        id.to_string(),
        Event::Compute(ComputeCommand::RebuildInstance(Box::new(
            MigrationCommand {
                instance_id: id,
                migration_id: op,
                host: host.clone(),
                source_host: host.clone(),
                dest_host: host.clone(),
                attempt: 1,
                flavor,
                image,
                name: spec.name.clone(),
                project_id: project,
                power_on: original != VmState::Stopped,
            },
        ))),
    );
    c.await_step(id, &env.meta, Step::Rebuild, Some(op), Some(host), now_ms);
    if let Some(a) = c.awaiting_mut(id) {
        a.original_vm_state = Some(original);
    }
    vec![started, cmd]
}

/// The host's `answer` about the rebuild `f.migration_id`: what [`row`]
/// says follows.
pub(crate) fn on_fact(
    c: &mut Conductor,
    env: &Envelope,
    answer: Answer,
    f: &MigrationFact,
    now_ms: i64,
) -> Vec<Emit> {
    let id = f.instance_id;
    let Some(a) = c
        .awaits(id, Step::Rebuild, f.migration_id, &f.host)
        .cloned()
    else {
        return Vec::new();
    };
    let Some(project) = c.instances.get(&id).map(|i| i.project_id.clone()) else {
        return Vec::new();
    };
    // A rebuild's one command is attempt 1.
    match row().on(answer, f, 1) {
        Some(then) => {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            follow(c, env, id, &a, &project, then, fault, f.power_state)
        }
        None => Vec::new(),
    }
}

/// Carries out `then` for the rebuild awaited in `a`.
#[allow(clippy::too_many_arguments)]
fn follow(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &Awaiting,
    project: &str,
    then: Then<Infallible, Rebuilt, Failed>,
    fault: Fault,
    power_state: PowerState,
) -> Vec<Emit> {
    match then {
        Then::Progress => vec![c.instance_event(
            &env.meta,
            "rebuild-spawning",
            id,
            project,
            Event::Instance(InstanceEvent::RebuildSpawnBegan),
        )],
        Then::Next(never) => match never {},
        Then::Done(Rebuilt) => {
            c.stop_awaiting(id);
            let vm_state = match a.original_vm_state {
                Some(VmState::Stopped) => VmState::Stopped,
                _ => VmState::Active,
            };
            vec![c.instance_event(
                &env.meta,
                "rebuilt",
                id,
                project,
                Event::Instance(InstanceEvent::RebuildCompleted {
                    vm_state,
                    power_state,
                }),
            )]
        }
        Then::Recover(Failed) => fail(c, env, id, project, fault),
    }
}

fn fail(c: &mut Conductor, env: &Envelope, id: Uuid, project: &str, fault: Fault) -> Vec<Emit> {
    c.stop_awaiting(id);
    vec![c.instance_event(
        &env.meta,
        "rebuild-failed",
        id,
        project,
        Event::Instance(InstanceEvent::InstanceFailed { fault }),
    )]
}

pub(crate) fn on_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(project) = c.instances.get(&id).map(|i| i.project_id.clone()) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    // No power state to report: the host was silent.
    follow(
        c,
        env,
        id,
        a,
        &project,
        row().timed_out,
        fault,
        PowerState::NoState,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one step moves on and is undone when it fails.
    #[test]
    fn the_table_covers_every_step() {
        crate::saga::check_table(&[()], &[()], |()| row(), |never| match never {});
    }
}
