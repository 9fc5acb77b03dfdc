//! Compute services (Nova's `os-services`): an administrator enables,
//! disables or forces down a host's `nova-compute`, or deletes its record.
//! Accepted changes go to the `hosts` topic, where the scheduler reads them
//! (a disabled or forced-down host fails the ComputeFilter) and the API
//! shows them.

use novalog_schemas::events::{ServiceChange, ServiceStatus};
use novalog_schemas::{Envelope, Event, HostEvent, Rejection};

use crate::core::{Conductor, Dest, Emit, emit};

fn refuse(env: &Envelope, host: &str, action: &str) -> Emit {
    Conductor::reject(
        env,
        host.to_owned(),
        Rejection::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-services:{action} to be performed."
        )),
    )
}

/// The whole status the API computed (the old intent): kept as the
/// service's status, as before.
pub(crate) fn on_update(c: &mut Conductor, env: &Envelope, s: &ServiceStatus) -> Vec<Emit> {
    if !env.meta.actor.is_admin() {
        return vec![refuse(env, &s.host, "update")];
    }
    record(c, env, s.clone())
}

/// A change to some fields, applied to the status as recorded here (or,
/// for a host never changed since, as the API showed it), so that
/// concurrent changes to different fields are all kept.
pub(crate) fn on_change(c: &mut Conductor, env: &Envelope, ch: &ServiceChange) -> Vec<Emit> {
    if !env.meta.actor.is_admin() {
        return vec![refuse(env, &ch.host, "update")];
    }
    let next = ch.apply(c.services.get(&ch.host).unwrap_or(&ch.seen));
    record(c, env, next)
}

fn record(c: &mut Conductor, env: &Envelope, s: ServiceStatus) -> Vec<Emit> {
    c.services.insert(s.host.clone(), s.clone());
    vec![emit(
        Dest::Hosts,
        s.host.clone(),
        &env.meta,
        "service-updated",
        s.host.clone(),
        Event::Host(HostEvent::ServiceUpdated(Box::new(s))),
    )]
}

/// Nova refuses to delete a compute service that still hosts instances.
pub(crate) fn on_delete(c: &mut Conductor, env: &Envelope, host: &str) -> Vec<Emit> {
    if !env.meta.actor.is_admin() {
        return vec![refuse(env, host, "delete")];
    }
    let hosting = c
        .instances
        .values()
        .any(|i| !i.is_deleted() && i.host.as_deref() == Some(host));
    if hosting {
        return vec![Conductor::reject(
            env,
            host.to_owned(),
            Rejection::conflict(
                "Unable to delete compute service that is hosting instances. Migrate or delete the instances first.",
            ),
        )];
    }
    // A host that registers again is a new service, with the defaults.
    c.services.remove(host);
    vec![emit(
        Dest::Hosts,
        host.to_owned(),
        &env.meta,
        "service-deleted",
        host.to_owned(),
        Event::Host(HostEvent::ServiceDeleted {
            host: host.to_owned(),
        }),
    )]
}
