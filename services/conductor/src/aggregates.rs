//! Host aggregates (Nova's `os-aggregates`), administrators only: created,
//! renamed, deleted, hosts added and removed, metadata set, all on the
//! `catalog` topic. An aggregate's `availability_zone` metadata puts its
//! hosts in that zone, so a host may not be in two aggregates with
//! different zones (Nova's rule).

use std::collections::BTreeMap;

use novalog_schemas::events::HostAggregate;
use novalog_schemas::{CatalogEvent, Envelope, Event, Rejection};

use crate::core::{Conductor, Dest, Emit, emit};

const AZ: &str = "availability_zone";

/// An aggregate intent, as the dispatcher hands it over (the
/// `Aggregate*Requested` [`Intent`](novalog_schemas::Intent)'s fields,
/// borrowed).
#[derive(Debug, Clone, Copy)]
pub(crate) enum AggregateIntent<'a> {
    Create(&'a HostAggregate),
    Update {
        aggregate_id: &'a u32,
        name: &'a Option<String>,
        availability_zone: &'a Option<String>,
    },
    Delete {
        aggregate_id: &'a u32,
    },
    HostAdd {
        aggregate_id: &'a u32,
        host: &'a String,
    },
    HostRemove {
        aggregate_id: &'a u32,
        host: &'a String,
    },
    MetadataSet {
        aggregate_id: &'a u32,
        metadata: &'a BTreeMap<String, Option<String>>,
    },
}

impl AggregateIntent<'_> {
    /// Nova's policy name for it (`os_compute_api:os-aggregates:<action>`).
    fn action(self) -> &'static str {
        match self {
            AggregateIntent::Create(_) => "create",
            AggregateIntent::Update { .. } => "update",
            AggregateIntent::Delete { .. } => "delete",
            AggregateIntent::HostAdd { .. } => "add_host",
            AggregateIntent::HostRemove { .. } => "remove_host",
            AggregateIntent::MetadataSet { .. } => "set_metadata",
        }
    }
}

/// An accepted aggregate intent: the aggregate it is about, that
/// aggregate afterwards (`None`: deleted), and the fact to record.
struct Decided {
    id: u32,
    after: Option<HostAggregate>,
    fact: CatalogEvent,
}

impl Decided {
    /// `a` changed as `fact` says.
    fn changed(a: HostAggregate, fact: fn(Box<HostAggregate>) -> CatalogEvent) -> Self {
        Decided {
            id: a.id,
            after: Some(a.clone()),
            fact: fact(Box::new(a)),
        }
    }
}

/// The decision on one aggregate intent, or the rejection.
type Decision = Result<Decided, Rejection>;

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

fn decide(c: &Conductor, intent: AggregateIntent<'_>, now_ms: i64) -> Decision {
    let existing = |id: u32| c.aggregates.get(&id).ok_or_else(|| not_found(id));
    let name_taken = |name: &str, except: u32| {
        c.aggregates
            .values()
            .any(|a| a.name == name && a.id != except)
    };
    match intent {
        AggregateIntent::Create(req) => {
            if name_taken(&req.name, 0) {
                return Err(Rejection::conflict(format!(
                    "Aggregate {} already exists.",
                    req.name
                )));
            }
            let id = c.aggregates.keys().next_back().map_or(1, |last| last + 1);
            let a = HostAggregate {
                id,
                hosts: Vec::new(),
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
                ..req.clone()
            };
            Ok(Decided::changed(a, CatalogEvent::AggregateCreated))
        }
        AggregateIntent::Update {
            aggregate_id,
            name,
            availability_zone,
        } => {
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
            Ok(Decided::changed(a, CatalogEvent::AggregateUpdated))
        }
        AggregateIntent::Delete { aggregate_id } => {
            let a = existing(*aggregate_id)?;
            if !a.hosts.is_empty() {
                return Err(Rejection::invalid(format!(
                    "Cannot remove aggregate {}. Reason: Host aggregate is not empty.",
                    a.id
                )));
            }
            Ok(Decided {
                id: a.id,
                after: None,
                fact: CatalogEvent::AggregateDeleted { aggregate_id: a.id },
            })
        }
        AggregateIntent::HostAdd { aggregate_id, host } => {
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
            Ok(Decided {
                id: a.id,
                after: Some(a.clone()),
                fact: CatalogEvent::AggregateHostAdded {
                    aggregate: Box::new(a),
                    host: host.clone(),
                },
            })
        }
        AggregateIntent::HostRemove { aggregate_id, host } => {
            let mut a = existing(*aggregate_id)?.clone();
            let Some(pos) = a.hosts.iter().position(|h| h == host) else {
                return Err(Rejection::not_found(format!(
                    "Cannot remove host {host} in aggregate {}",
                    a.id
                )));
            };
            a.hosts.remove(pos);
            a.updated_at_ms = now_ms;
            Ok(Decided {
                id: a.id,
                after: Some(a.clone()),
                fact: CatalogEvent::AggregateHostRemoved {
                    aggregate: Box::new(a),
                    host: host.clone(),
                },
            })
        }
        AggregateIntent::MetadataSet {
            aggregate_id,
            metadata,
        } => {
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
            Ok(Decided::changed(a, CatalogEvent::AggregateMetadataSet))
        }
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
pub(crate) fn on_intent(
    c: &mut Conductor,
    env: &Envelope,
    intent: AggregateIntent<'_>,
    now_ms: i64,
) -> Vec<Emit> {
    let key = env.meta.aggregate_id.clone();
    if !env.meta.actor.is_admin() {
        return vec![Conductor::reject(
            env,
            key,
            Rejection::forbidden(format!(
                "Policy doesn't allow os_compute_api:os-aggregates:{} to be performed.",
                intent.action()
            )),
        )];
    }
    match decide(c, intent, now_ms) {
        Err(r) => vec![Conductor::reject(env, key, r)],
        Ok(Decided { id, after, fact }) => {
            match after {
                Some(a) => c.aggregates.insert(id, a),
                None => c.aggregates.remove(&id),
            };
            vec![emit(
                Dest::Catalog,
                id.to_string(),
                &env.meta,
                "aggregate",
                id.to_string(),
                Event::Catalog(fact),
            )]
        }
    }
}
