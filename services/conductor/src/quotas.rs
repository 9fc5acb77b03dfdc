//! Quotas (Nova's `os-quota-sets`), enforced exactly: intents are keyed
//! by project, so one project's creates reach the conductor one after
//! another, and each create is checked against the usage every accepted
//! create before it already counts. Concurrent creates at the edge can
//! therefore never exceed the limit.
//!
//! Usage is kept per project as instances are folded ([`Usage`] of every
//! instance not deleted, Nova counting instances being deleted until they
//! are gone); a project's own limits are catalog facts.

use std::collections::BTreeMap;

use novalog_schemas::events::ServerCreateRequested;
use novalog_schemas::quota::{self, Usage};
use novalog_schemas::{CatalogEvent, Envelope, Event, Instance, Rejection};

use crate::core::{Conductor, Dest, Emit, emit};

/// What `i` counts against its project's quota.
pub fn usage_of(i: &Instance) -> Usage {
    if i.is_deleted() {
        return Usage::default();
    }
    Usage::of_flavor(&i.flavor)
}

/// Moves `project`'s usage from what `before` counted to what `after`
/// counts.
pub(crate) fn account(
    usage: &mut std::collections::HashMap<String, Usage>,
    project: &str,
    before: Option<&Instance>,
    after: Option<&Instance>,
) {
    let b = before.map(usage_of).unwrap_or_default();
    let a = after.map(usage_of).unwrap_or_default();
    if a == b {
        return;
    }
    let u = usage.entry(project.to_owned()).or_default();
    *u = u.minus(b).plus(a);
}

/// Room a multiple create was admitted for and has not used yet: its
/// later instances take it, nobody else can. Kept in memory only; a room
/// not taken within [`RESERVATION_TTL_MS`] (the API died mid-request) is
/// given back.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub project: String,
    pub each: Usage,
    /// Instances admitted and not created yet.
    pub remaining: u32,
    /// The refusal of the whole request, for its later instances.
    pub refused: Option<String>,
    pub at_ms: i64,
}

pub const RESERVATION_TTL_MS: i64 = 60_000;

/// Whether the instance `req` asks for fits its project's quota. A
/// multiple create (`max_count` > 1) is decided whole at its first
/// instance: as many as fit up to `max_count` are admitted and their room
/// reserved, or none when fewer than `min_count` fit (Nova's
/// `check_num_instances_quota`).
/// `project`'s limits: its own where an administrator set them, else quota
/// class `default`'s, else the defaults.
pub(crate) fn limits_of(c: &Conductor, project: &str) -> BTreeMap<&'static str, i64> {
    let none = BTreeMap::new();
    c.settings.quota.limits_in_class(
        c.quota_classes.get(DEFAULT_CLASS).unwrap_or(&none),
        c.quota_overrides.get(project).unwrap_or(&none),
    )
}

/// The quota class every project falls back to.
pub const DEFAULT_CLASS: &str = "default";

pub(crate) fn check_create(
    c: &mut Conductor,
    project: &str,
    req: &ServerCreateRequested,
    now_ms: i64,
) -> Result<(), String> {
    c.reservations
        .retain(|_, r| now_ms - r.at_ms < RESERVATION_TTL_MS);
    // Before the instance count, as Nova validates the request's metadata
    // before it counts instances.
    quota::check_metadata(&limits_of(c, project), req.metadata.len())?;
    let flavor = &req.flavor;
    let each = Usage::of_flavor(flavor);
    if let Some(r) = c.reservations.get_mut(&req.reservation_id)
        && r.project == project
    {
        if let Some(refusal) = &r.refused {
            return Err(refusal.clone());
        }
        if r.remaining > 0 {
            r.remaining -= 1;
            return Ok(());
        }
    }
    let limits = limits_of(c, project);
    let mut used = c.usage.get(project).copied().unwrap_or_default();
    for r in c.reservations.values().filter(|r| r.project == project) {
        used = used.plus(r.each.times(i64::from(r.remaining)));
    }
    let multiple = req.max_count > 1 && !c.reservations.contains_key(&req.reservation_id);
    if !multiple {
        return quota::check(&limits, used, each);
    }
    let decided = quota::admit(&limits, used, each, req.min_count, req.max_count);
    c.reservations.insert(
        req.reservation_id.clone(),
        Reservation {
            project: project.to_owned(),
            each,
            remaining: decided.as_ref().map_or(0, |n| n - 1),
            refused: decided.as_ref().err().cloned(),
            at_ms: now_ms,
        },
    );
    decided.map(|_| ())
}

fn forbidden(env: &Envelope, project: &str, rule: &str) -> Emit {
    Conductor::reject(
        env,
        project.to_owned(),
        Rejection::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-quota-sets:{rule} to be performed."
        )),
    )
}

pub(crate) fn on_set(
    c: &mut Conductor,
    env: &Envelope,
    project: &str,
    limits: &BTreeMap<String, i64>,
    force: bool,
) -> Vec<Emit> {
    if !env.meta.actor.is_admin() {
        return vec![forbidden(env, project, "update")];
    }
    let reject = |message: String| {
        vec![Conductor::reject(
            env,
            project.to_owned(),
            Rejection::invalid(message),
        )]
    };
    let used = c.usage.get(project).copied().unwrap_or_default();
    for (resource, limit) in limits {
        if quota::RESOURCES.iter().all(|r| r != resource) {
            return reject(format!(
                "Additional properties are not allowed ('{resource}' was unexpected)"
            ));
        }
        if *limit < -1 {
            return reject(format!(
                "Invalid input for field/attribute {resource}. Value: {limit}. {limit} is less than the minimum of -1"
            ));
        }
        let minimum = used.get(resource);
        if !force && *limit != -1 && *limit < minimum {
            return reject(format!(
                "Quota limit {limit} for {resource} must be greater than or equal to already used and reserved {minimum}."
            ));
        }
    }
    let mut overrides = c.quota_overrides.get(project).cloned().unwrap_or_default();
    overrides.extend(limits.iter().map(|(k, v)| (k.clone(), *v)));
    c.quota_overrides
        .insert(project.to_owned(), overrides.clone());
    vec![emit(
        Dest::Catalog,
        project.to_owned(),
        &env.meta,
        "quota-set",
        project.to_owned(),
        Event::Catalog(CatalogEvent::QuotaSetUpdated {
            project_id: project.to_owned(),
            limits: overrides,
        }),
    )]
}

pub(crate) fn on_reset(c: &mut Conductor, env: &Envelope, project: &str) -> Vec<Emit> {
    if !env.meta.actor.is_admin() {
        return vec![forbidden(env, project, "delete")];
    }
    c.quota_overrides.remove(project);
    vec![emit(
        Dest::Catalog,
        project.to_owned(),
        &env.meta,
        "quota-reset",
        project.to_owned(),
        Event::Catalog(CatalogEvent::QuotaSetDeleted {
            project_id: project.to_owned(),
        }),
    )]
}

/// `PUT /os-quota-class-sets/{class}`: the class's limits merged with those
/// it had. Unlike a project's, a class's limits are not checked against any
/// usage (Nova's `update_class`).
pub(crate) fn on_class_set(
    c: &mut Conductor,
    env: &Envelope,
    class: &str,
    limits: &BTreeMap<String, i64>,
) -> Vec<Emit> {
    let reject = |r: Rejection| vec![Conductor::reject(env, class.to_owned(), r)];
    if !env.meta.actor.is_admin() {
        return reject(Rejection::forbidden(
            "Policy doesn't allow os_compute_api:os-quota-class-sets:update to be performed.",
        ));
    }
    if class.is_empty() || class.chars().count() > 255 {
        return reject(Rejection::invalid(
            "quota_class_name has a length outside 1 to 255 characters.",
        ));
    }
    for (resource, limit) in limits {
        if quota::RESOURCES.iter().all(|r| r != resource) {
            return reject(Rejection::invalid(format!(
                "Additional properties are not allowed ('{resource}' was unexpected)"
            )));
        }
        if *limit < -1 {
            return reject(Rejection::invalid(format!(
                "Invalid input for field/attribute {resource}. Value: {limit}. {limit} is less than the minimum of -1"
            )));
        }
    }
    let mut merged = c.quota_classes.get(class).cloned().unwrap_or_default();
    merged.extend(limits.iter().map(|(k, v)| (k.clone(), *v)));
    c.quota_classes.insert(class.to_owned(), merged.clone());
    vec![emit(
        Dest::Catalog,
        class.to_owned(),
        &env.meta,
        "quota-class-set",
        class.to_owned(),
        Event::Catalog(CatalogEvent::QuotaClassSetUpdated {
            class_name: class.to_owned(),
            limits: merged,
        }),
    )]
}
