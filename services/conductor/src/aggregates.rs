//! Host aggregates (Nova's `os-aggregates`), administrators only: created,
//! renamed, deleted, hosts added and removed, metadata set, all on the
//! `catalog` topic. An aggregate's `availability_zone` metadata puts its
//! hosts in that zone, so a host may not be in two aggregates with
//! different zones (Nova's rule).

use std::collections::BTreeMap;

use novalog_schemas::events::HostAggregate;
use novalog_schemas::{CatalogEvent, Envelope, Event, Intent, Rejection};

use crate::core::{Conductor, Dest, Emit, emit};

const AZ: &str = "availability_zone";

/// The decision on one aggregate intent: the fact to record, or the
/// rejection.
type Decision = Result<Event, Rejection>;

fn not_found(id: u32) -> Rejection {
    Rejection::not_found(format!("Aggregate {id} could not be found."))
}

/// Zones `host` is in through aggregates other than `except`.
fn zones_of(c: &Conductor, host: &str, except: u32) -> Vec<String> {
    c.aggregates
        .values()
        .filter(|a| a.id != except && a.hosts.iter().any(|h| h == host))
        .filter_map(|a| a.availability_zone().map(str::to_owned))
        .collect()
}

/// Whether every host of `a` may be in zone `az` (`None`: no zone).
fn zone_conflict(c: &Conductor, a: &HostAggregate, az: Option<&str>) -> Option<String> {
    let az = az?;
    let clash: Vec<String> = a
        .hosts
        .iter()
        .flat_map(|h| zones_of(c, h, a.id))
        .filter(|z| z != az)
        .collect();
    (!clash.is_empty()).then(|| {
        format!(
            "One or more hosts already in availability zone(s) {}",
            clash.join(", ")
        )
    })
}

fn decide(c: &Conductor, env: &Envelope, now_ms: i64) -> Decision {
    let existing = |id: u32| c.aggregates.get(&id).ok_or_else(|| not_found(id));
    let name_taken = |name: &str, except: u32| {
        c.aggregates
            .values()
            .any(|a| a.name == name && a.id != except)
    };
    match &env.event {
        Event::Intent(Intent::AggregateCreateRequested(req)) => {
            if name_taken(&req.name, 0) {
                return Err(Rejection::conflict(format!(
                    "Aggregate {} already exists.",
                    req.name
                )));
            }
            let id = c.aggregates.keys().next_back().map_or(1, |last| last + 1);
            Ok(Event::Catalog(CatalogEvent::AggregateCreated(Box::new(
                HostAggregate {
                    id,
                    hosts: Vec::new(),
                    created_at_ms: now_ms,
                    updated_at_ms: now_ms,
                    ..(**req).clone()
                },
            ))))
        }
        Event::Intent(Intent::AggregateUpdateRequested {
            aggregate_id,
            name,
            availability_zone,
        }) => {
            let mut a = existing(*aggregate_id)?.clone();
            if let Some(name) = name {
                if name_taken(name, a.id) {
                    return Err(Rejection::conflict(format!(
                        "Aggregate {name} already exists."
                    )));
                }
                a.name = name.clone();
            }
            if let Some(az) = availability_zone {
                if let Some(reason) = zone_conflict(c, &a, Some(az)) {
                    return Err(Rejection::invalid(format!(
                        "Cannot update aggregate {}. Reason: {reason}.",
                        a.id
                    )));
                }
                a.metadata.insert(AZ.into(), az.clone());
            }
            a.updated_at_ms = now_ms;
            Ok(Event::Catalog(CatalogEvent::AggregateUpdated(Box::new(a))))
        }
        Event::Intent(Intent::AggregateDeleteRequested { aggregate_id }) => {
            let a = existing(*aggregate_id)?;
            if !a.hosts.is_empty() {
                return Err(Rejection::invalid(format!(
                    "Cannot remove aggregate {}. Reason: Host aggregate is not empty.",
                    a.id
                )));
            }
            Ok(Event::Catalog(CatalogEvent::AggregateDeleted {
                aggregate_id: a.id,
            }))
        }
        Event::Intent(Intent::AggregateHostAddRequested { aggregate_id, host }) => {
            let mut a = existing(*aggregate_id)?.clone();
            if a.hosts.contains(host) {
                return Err(Rejection::conflict(format!(
                    "Aggregate {} already has host {host}.",
                    a.id
                )));
            }
            if let Some(az) = a.availability_zone() {
                let clash: Vec<String> = zones_of(c, host, a.id)
                    .into_iter()
                    .filter(|z| z != az)
                    .collect();
                if !clash.is_empty() {
                    return Err(Rejection::conflict(format!(
                        "Cannot add host to aggregate {}. Reason: One or more hosts already in availability zone(s) {}.",
                        a.id,
                        clash.join(", ")
                    )));
                }
            }
            a.hosts.push(host.clone());
            a.updated_at_ms = now_ms;
            Ok(Event::Catalog(CatalogEvent::AggregateHostAdded {
                aggregate: Box::new(a),
                host: host.clone(),
            }))
        }
        Event::Intent(Intent::AggregateHostRemoveRequested { aggregate_id, host }) => {
            let mut a = existing(*aggregate_id)?.clone();
            let Some(pos) = a.hosts.iter().position(|h| h == host) else {
                return Err(Rejection::not_found(format!(
                    "Cannot remove host {host} in aggregate {}",
                    a.id
                )));
            };
            a.hosts.remove(pos);
            a.updated_at_ms = now_ms;
            Ok(Event::Catalog(CatalogEvent::AggregateHostRemoved {
                aggregate: Box::new(a),
                host: host.clone(),
            }))
        }
        Event::Intent(Intent::AggregateMetadataSetRequested {
            aggregate_id,
            metadata,
        }) => {
            let mut a = existing(*aggregate_id)?.clone();
            if let Some(Some(az)) = metadata.get(AZ)
                && let Some(reason) = zone_conflict(c, &a, Some(az))
            {
                return Err(Rejection::invalid(format!(
                    "Cannot update aggregate {}. Reason: {reason}.",
                    a.id
                )));
            }
            apply_metadata(&mut a.metadata, metadata);
            a.updated_at_ms = now_ms;
            Ok(Event::Catalog(CatalogEvent::AggregateMetadataSet(
                Box::new(a),
            )))
        }
        _ => Err(Rejection::invalid("not an aggregate intent")),
    }
}

fn apply_metadata(into: &mut BTreeMap<String, String>, changes: &BTreeMap<String, Option<String>>) {
    for (k, v) in changes {
        match v {
            Some(v) => into.insert(k.clone(), v.clone()),
            None => into.remove(k),
        };
    }
}

/// Decides on an aggregate intent and, when accepted, folds the fact.
pub(crate) fn on_intent(c: &mut Conductor, env: &Envelope, now_ms: i64) -> Vec<Emit> {
    let key = env.meta.aggregate_id.clone();
    if !env.meta.actor.is_admin() {
        let action = match &env.event {
            Event::Intent(Intent::AggregateCreateRequested(_)) => "create",
            Event::Intent(Intent::AggregateUpdateRequested { .. }) => "update",
            Event::Intent(Intent::AggregateDeleteRequested { .. }) => "delete",
            Event::Intent(Intent::AggregateHostAddRequested { .. }) => "add_host",
            Event::Intent(Intent::AggregateHostRemoveRequested { .. }) => "remove_host",
            _ => "set_metadata",
        };
        return vec![Conductor::reject(
            env,
            key,
            Rejection::forbidden(format!(
                "Policy doesn't allow os_compute_api:os-aggregates:{action} to be performed."
            )),
        )];
    }
    match decide(c, env, now_ms) {
        Err(r) => vec![Conductor::reject(env, key, r)],
        Ok(fact) => {
            let id = match &fact {
                Event::Catalog(CatalogEvent::AggregateDeleted { aggregate_id }) => {
                    c.aggregates.remove(aggregate_id);
                    *aggregate_id
                }
                Event::Catalog(CatalogEvent::AggregateCreated(a))
                | Event::Catalog(CatalogEvent::AggregateUpdated(a))
                | Event::Catalog(CatalogEvent::AggregateMetadataSet(a))
                | Event::Catalog(CatalogEvent::AggregateHostAdded { aggregate: a, .. })
                | Event::Catalog(CatalogEvent::AggregateHostRemoved { aggregate: a, .. }) => {
                    c.aggregates.insert(a.id, (**a).clone());
                    a.id
                }
                _ => return Vec::new(),
            };
            vec![emit(
                Dest::Catalog,
                id.to_string(),
                &env.meta,
                "aggregate",
                id.to_string(),
                fact,
            )]
        }
    }
}
