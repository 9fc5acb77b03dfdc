//! Server groups (Nova's `os-server-groups`): created and deleted on the
//! `catalog` topic; an instance joins one through the `group` scheduler
//! hint of its create, and every scheduling request of a member carries the
//! group as it stands then (policy, rule, members and their hosts).

use std::collections::BTreeSet;

use novalog_schemas::events::{ServerGroup, ServerGroupPolicy, ServerGroupSpec};
use novalog_schemas::{CatalogEvent, Envelope, Event, Rejection, TaskState, VmState};
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
    /// Members of an `affinity` / `anti-affinity` group whose scheduling
    /// waits, in the order they were created, until no other member is
    /// still building: each is placed knowing where the ones before it
    /// landed, as Nova's scheduler places a multiple create one by one
    /// within a request. Without this, two members created together were
    /// each placed with no host known for the other.
    #[serde(default)]
    pub held: Vec<HeldBuild>,
}

/// A create whose scheduling waits for the group's other builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldBuild {
    pub instance: Uuid,
    pub scheduler_hints: std::collections::BTreeMap<String, Vec<String>>,
}

/// Whether the group's policy is a hard rule the filters enforce, so that a
/// member must be placed knowing where the others are.
fn is_hard(policy: ServerGroupPolicy) -> bool {
    matches!(
        policy,
        ServerGroupPolicy::Affinity | ServerGroupPolicy::AntiAffinity
    )
}

/// Still being built and not held: where it lands is not settled yet (a
/// failed claim may still move it to an alternate).
fn in_flight(c: &Conductor, s: &GroupState, m: Uuid) -> bool {
    !s.held.iter().any(|h| h.instance == m)
        && c.instances
            .get(&m)
            .is_some_and(|i| i.vm_state == VmState::Building)
}

/// Waiting for a host and not yet asked for one.
fn awaiting_schedule(c: &Conductor, id: Uuid) -> bool {
    c.instances.get(&id).is_some_and(|i| {
        i.vm_state == VmState::Building
            && i.task_state == Some(TaskState::Scheduling)
            && i.host.is_none()
    })
}

/// Holds the scheduling of `instance` (just joined `group`) when the group
/// is a hard one and another member is still building or held; returns
/// whether it was held.
pub(crate) fn hold_if_busy(
    c: &mut Conductor,
    group: Uuid,
    instance: Uuid,
    scheduler_hints: &std::collections::BTreeMap<String, Vec<String>>,
) -> bool {
    let Some(s) = c.server_groups.get(&group) else {
        return false;
    };
    let busy = is_hard(s.group.policy)
        && (!s.held.is_empty()
            || s.members
                .iter()
                .any(|m| *m != instance && in_flight(c, s, *m)));
    if busy && let Some(s) = c.server_groups.get_mut(&group) {
        s.held.push(HeldBuild {
            instance,
            scheduler_hints: scheduler_hints.clone(),
        });
    }
    busy
}

/// Releases, in each group with held builds and no member in flight, the
/// first held build still waiting for a host (those deleted or failed
/// meanwhile are dropped), with the group as it stands now, for the
/// caller to ask the scheduler with.
pub(crate) fn release_held(c: &mut Conductor) -> Vec<(HeldBuild, Option<ServerGroupSpec>)> {
    let waiting: Vec<Uuid> = c
        .server_groups
        .iter()
        .filter(|(_, s)| !s.held.is_empty())
        .map(|(g, _)| *g)
        .collect();
    let mut out = Vec::new();
    for g in waiting {
        let s = &c.server_groups[&g];
        if s.members.iter().any(|m| in_flight(c, s, *m)) {
            continue;
        }
        let gone: Vec<Uuid> = s
            .held
            .iter()
            .map(|h| h.instance)
            .filter(|id| !awaiting_schedule(c, *id))
            .collect();
        let Some(s) = c.server_groups.get_mut(&g) else {
            continue;
        };
        s.held.retain(|h| !gone.contains(&h.instance));
        if s.held.is_empty() {
            continue;
        }
        let next = s.held.remove(0);
        let spec = spec_for(c, g, next.instance);
        out.push((next, spec));
    }
    out
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
            held: Vec::new(),
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
