//! Changes to a server's own attributes, decided here so they are ordered
//! with everything else that happens to it: name and description
//! (`PUT /servers/{id}`), metadata, and tags (2.26). Each accepted change
//! is one event carrying the attribute as it is afterwards.

use std::collections::BTreeMap;

use novalog_schemas::{AccessChange, Envelope, Event, Instance, InstanceEvent, Rejection};
use uuid::Uuid;

use crate::core::{Conductor, Emit};
use crate::preconditions::{self, Caller, Rule};

/// Nova's `objects.instance.MAX_TAG_COUNT`.
pub const MAX_TAGS: usize = 50;

/// The instance `id` as `env`'s caller may change it (checked against
/// `rule` as Nova's `action`), or the rejection to answer with.
fn changeable<'a>(
    c: &'a Conductor,
    env: &Envelope,
    id: Uuid,
    rule: Option<(Rule, &str)>,
) -> Result<&'a Instance, Box<Emit>> {
    let actor = &env.meta.actor;
    let caller = Caller {
        is_admin: actor.is_admin(),
        project_id: &actor.project_id,
    };
    let reject = |r| Box::new(Conductor::reject(env, id.to_string(), r));
    let i = c
        .instances
        .get(&id)
        .filter(|i| !i.is_deleted() && (caller.is_admin || i.project_id == actor.project_id))
        .ok_or_else(|| {
            reject(Rejection::not_found(format!(
                "Instance {id} could not be found."
            )))
        })?;
    if let Some((rule, action)) = rule {
        preconditions::check_rule(rule, i, caller).map_err(|r| reject(r.rejection(action, &id)))?;
    }
    Ok(i)
}

pub(crate) fn on_update(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    name: &Option<String>,
    description: &Option<Option<String>>,
    access: &AccessChange,
    hostname: &Option<String>,
) -> Vec<Emit> {
    let i = match changeable(c, env, id, None) {
        Ok(i) => i,
        Err(e) => return vec![*e],
    };
    let updated = Event::Instance(InstanceEvent::InstanceUpdated {
        name: name.clone().unwrap_or_else(|| i.name.clone()),
        description: description.clone().unwrap_or_else(|| i.description.clone()),
        access: Some(access.applied_to(i.access)),
        hostname: hostname.clone(),
    });
    let project = i.project_id.clone();
    vec![c.instance_event(&env.meta, "updated", id, &project, updated)]
}

pub(crate) fn on_metadata(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    replace_all: bool,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> Vec<Emit> {
    let action = if remove.is_empty() {
        "update metadata"
    } else {
        "delete metadata"
    };
    let i = match changeable(c, env, id, Some((preconditions::METADATA, action))) {
        Ok(i) => i,
        Err(e) => return vec![*e],
    };
    let reject = |r| vec![Conductor::reject(env, id.to_string(), r)];
    let mut metadata = if replace_all {
        BTreeMap::new()
    } else {
        i.metadata.clone()
    };
    for key in remove {
        if metadata.remove(key).is_none() {
            return reject(Rejection::not_found("Metadata item was not found"));
        }
    }
    metadata.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    let project = i.project_id.clone();
    // Nova's MetadataLimitExceeded, a quota error: the project's limit.
    let limits = crate::quotas::limits_of(c, &project);
    if let Err(message) = novalog_schemas::quota::check_metadata(&limits, metadata.len()) {
        return reject(Rejection::over_quota(message));
    }
    let event = Event::Instance(InstanceEvent::InstanceMetadataSet { metadata });
    vec![c.instance_event(&env.meta, "metadata-set", id, &project, event)]
}

pub(crate) fn on_tags(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    replace_all: bool,
    add: &[String],
    remove: &[String],
) -> Vec<Emit> {
    let action = match (replace_all, add.is_empty(), remove.is_empty()) {
        (true, true, _) => "delete tags",
        (true, false, _) => "update tags",
        (false, _, false) => "delete tag",
        (false, _, true) => "update tag",
    };
    let i = match changeable(c, env, id, Some((preconditions::TAGS, action))) {
        Ok(i) => i,
        Err(e) => return vec![*e],
    };
    let mut tags = if replace_all {
        Vec::new()
    } else {
        i.tags.clone()
    };
    for tag in remove {
        let Some(pos) = tags.iter().position(|t| t == tag) else {
            return vec![Conductor::reject(
                env,
                id.to_string(),
                Rejection::not_found(format!("Instance {id} has no tag '{tag}'")),
            )];
        };
        tags.remove(pos);
    }
    for tag in add {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    if tags.len() > MAX_TAGS {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::invalid(format!(
                "The number of tags exceeded the per-server limit {MAX_TAGS}"
            )),
        )];
    }
    let project = i.project_id.clone();
    let event = Event::Instance(InstanceEvent::InstanceTagsSet { tags });
    vec![c.instance_event(&env.meta, "tags-set", id, &project, event)]
}
