//! Server groups (Nova's `os-server-groups`): created and deleted on the
//! `catalog` topic; an instance joins one through the `group` scheduler
//! hint of its create, and every scheduling request of a member carries the
//! group as it stands then (policy, rule, members and their hosts).

use std::collections::BTreeSet;

use novalog_schemas::events::{ServerGroup, ServerGroupSpec};
use novalog_schemas::{CatalogEvent, Envelope, Event, Rejection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};

/// The scheduler hint that names the group an instance joins.
pub const GROUP_HINT: &str = "group";

/// A group and the instances that joined it; a deleted instance leaves
/// (rows stored before that was so may still name some: they are skipped
/// when the group is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub group: ServerGroup,
    pub members: BTreeSet<Uuid>,
}

/// The group a create's hints name, as given, if any.
pub fn group_hint(hints: &std::collections::BTreeMap<String, Vec<String>>) -> Option<String> {
    hints.get(GROUP_HINT).and_then(|v| v.first()).cloned()
}

fn not_found(id: Uuid) -> String {
    format!("Instance group {id} could not be found.")
}

pub(crate) fn on_create(
    c: &mut Conductor,
    env: &Envelope,
    g: &ServerGroup,
    now_ms: i64,
) -> Vec<Emit> {
    if c.server_groups.contains_key(&g.id) {
        return Vec::new(); // redelivered intent: already decided
    }
    let actor = &env.meta.actor;
    let group = ServerGroup {
        project_id: actor.project_id.clone(),
        user_id: actor.user_id.clone(),
        created_at_ms: now_ms,
        ..g.clone()
    };
    c.server_groups.insert(
        g.id,
        GroupState {
            group: group.clone(),
            members: BTreeSet::new(),
        },
    );
    vec![emit(
        Dest::Catalog,
        g.id.to_string(),
        &env.meta,
        "server-group-created",
        g.id.to_string(),
        Event::Catalog(CatalogEvent::ServerGroupCreated(Box::new(group))),
    )]
}

pub(crate) fn on_delete(c: &mut Conductor, env: &Envelope, id: Uuid) -> Vec<Emit> {
    let actor = &env.meta.actor;
    let visible = c
        .server_groups
        .get(&id)
        .is_some_and(|s| actor.is_admin() || s.group.project_id == actor.project_id);
    if !visible {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::not_found(not_found(id)),
        )];
    }
    c.server_groups.remove(&id);
    vec![emit(
        Dest::Catalog,
        id.to_string(),
        &env.meta,
        "server-group-deleted",
        id.to_string(),
        Event::Catalog(CatalogEvent::ServerGroupDeleted { group_id: id }),
    )]
}

/// Checks the `group` hint of a create by `project`: `Ok(None)` without
/// one, the group's id when it names a group of the project, else the
/// rejection's message.
pub(crate) fn check_hint(
    c: &Conductor,
    hints: &std::collections::BTreeMap<String, Vec<String>>,
    project: &str,
    is_admin: bool,
) -> Result<Option<Uuid>, String> {
    let Some(raw) = group_hint(hints) else {
        return Ok(None);
    };
    let id = Uuid::parse_str(&raw).map_err(|_| format!("Invalid server group {raw}."))?;
    match c.server_groups.get(&id) {
        Some(s) if is_admin || s.group.project_id == project => Ok(Some(id)),
        _ => Err(not_found(id)),
    }
}

/// Records `instance` as a member of `group`.
pub(crate) fn join(c: &mut Conductor, group: Uuid, instance: Uuid) {
    if let Some(s) = c.server_groups.get_mut(&group) {
        s.members.insert(instance);
    }
}

/// The group as the scheduler needs it for placing `instance`: the other
/// members not deleted, and the hosts they are on.
/// The group `instance` joined at create, as a scheduling request carries
/// it: a migration or evacuation honours the group's policy as the build
/// did (Nova keeps it in the request spec).
pub(crate) fn spec_of_member(c: &Conductor, instance: Uuid) -> Option<ServerGroupSpec> {
    let (id, _) = c
        .server_groups
        .iter()
        .find(|(_, g)| g.members.contains(&instance))?;
    spec_for(c, *id, instance)
}

pub(crate) fn spec_for(c: &Conductor, group: Uuid, instance: Uuid) -> Option<ServerGroupSpec> {
    let s = c.server_groups.get(&group)?;
    let mut members = Vec::new();
    let mut hosts = BTreeSet::new();
    for m in s.members.iter().filter(|m| **m != instance) {
        let Some(i) = c.instances.get(m).filter(|i| !i.is_deleted()) else {
            continue;
        };
        members.push(*m);
        if let Some(h) = &i.host {
            hosts.insert(h.clone());
        }
    }
    Some(ServerGroupSpec {
        id: group,
        policy: s.group.policy,
        max_server_per_host: s.group.max_server_per_host,
        hosts: hosts.into_iter().collect(),
        members,
    })
}
