//! The instance action log (Nova's `instance_actions` and
//! `instance_actions_events` tables) folded from the `instances` topic:
//! one action per request that changed a server (its request id is the
//! `x-openstack-request-id` of that request, carried as the correlation id
//! of every record it caused), with the events the conductor and the host
//! went through. Pure: the projection calls [`record`] for each instance
//! record it applies.

use novalog_schemas::{Envelope, Event, Instance, InstanceEvent};
use serde::{Deserialize, Serialize};

/// Nova's `InstanceActionEvent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// `compute_stop_instance`, `conductor_schedule_and_build_instances`, ...
    pub event: String,
    pub start_time_ms: i64,
    pub finish_time_ms: Option<i64>,
    /// `Success` or `Error` once finished.
    pub result: Option<String>,
    pub traceback: Option<String>,
    /// The host the event ran on (2.62, administrators).
    pub host: Option<String>,
    /// The fault message of a failed event (2.84).
    pub details: Option<String>,
}

/// Nova's `InstanceAction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceAction {
    /// `create`, `delete`, `reboot`, `stop`, `lock`, ...
    pub action: String,
    pub request_id: String,
    pub user_id: String,
    pub project_id: String,
    pub start_time_ms: i64,
    pub updated_at_ms: i64,
    /// `Error` once one of its events failed.
    pub message: Option<String>,
    pub events: Vec<ActionEvent>,
}

impl InstanceAction {
    fn open_event(&mut self, event: &str) -> Option<&mut ActionEvent> {
        self.events
            .iter_mut()
            .rev()
            .find(|e| e.event == event && e.finish_time_ms.is_none())
    }

    fn start(&mut self, event: &str, at: i64, host: Option<String>) {
        self.events.push(ActionEvent {
            event: event.to_owned(),
            start_time_ms: at,
            finish_time_ms: None,
            result: None,
            traceback: None,
            host,
            details: None,
        });
        self.updated_at_ms = at;
    }

    /// Finishes the open `event` (or, if none is open, records it as
    /// started and finished now); `error` is (message, traceback).
    fn finish(&mut self, event: &str, at: i64, host: Option<String>, error: Option<(&str, &str)>) {
        if self.open_event(event).is_none() {
            self.start(event, at, host);
        }
        let e = self.open_event(event).expect("just opened");
        e.finish_time_ms = Some(at);
        match error {
            None => e.result = Some("Success".into()),
            Some((message, traceback)) => {
                e.result = Some("Error".into());
                e.details = Some(message.to_owned());
                e.traceback = Some(traceback.to_owned());
                self.message = Some("Error".into());
            }
        }
        self.updated_at_ms = at;
    }
}

const SCHEDULE: &str = "conductor_schedule_and_build_instances";
const BUILD: &str = "compute__do_build_and_run_instance";
const TERMINATE: &str = "compute_terminate_instance";

fn new_action(env: &Envelope, name: &str, user_id: &str, project_id: &str) -> InstanceAction {
    InstanceAction {
        action: name.to_owned(),
        request_id: env.meta.correlation_id.clone(),
        user_id: user_id.to_owned(),
        project_id: project_id.to_owned(),
        start_time_ms: env.meta.occurred_at_ms,
        updated_at_ms: env.meta.occurred_at_ms,
        message: None,
        events: Vec::new(),
    }
}

/// The action a record belongs to: the one its request started, else the
/// newest one named `name`.
fn find<'a>(
    actions: &'a mut [InstanceAction],
    env: &Envelope,
    name: &str,
) -> Option<&'a mut InstanceAction> {
    let by_request = actions
        .iter()
        .rposition(|a| a.request_id == env.meta.correlation_id && a.action == name);
    let pos = by_request.or_else(|| actions.iter().rposition(|a| a.action == name))?;
    actions.get_mut(pos)
}

/// Folds one `instances` record into the instance's actions. `after` is
/// the instance once the record is applied.
pub fn record(actions: &mut Vec<InstanceAction>, env: &Envelope, after: &Instance) {
    let at = env.meta.occurred_at_ms;
    let actor = &env.meta.actor;
    let event = match &env.event {
        Event::Instance(event) => event,
        // Not an instance's history.
        Event::Intent(_)
        | Event::Scheduler(_)
        | Event::Compute(_)
        | Event::ComputeFact(_)
        | Event::Host(_)
        | Event::Catalog(_)
        | Event::DeadLetter(_)
        | Event::Billing(_) => return,
    };
    match event {
        InstanceEvent::InstanceCreated(c) => {
            let mut a = new_action(env, "create", &c.user_id, &c.project_id);
            a.start(SCHEDULE, at, None);
            actions.push(a);
        }
        InstanceEvent::InstanceScheduled { host, .. } => {
            if let Some(a) = find(actions, env, "create") {
                a.finish(SCHEDULE, at, None, None);
                a.start(BUILD, at, Some(host.clone()));
            }
        }
        InstanceEvent::InstanceRescheduled { host, reason, .. } => {
            if let Some(a) = find(actions, env, "create") {
                let previous = a.open_event(BUILD).and_then(|e| e.host.clone());
                a.finish(BUILD, at, previous, Some((reason, reason)));
                // The build goes on elsewhere; the action is not failed yet.
                a.message = None;
                a.start(BUILD, at, Some(host.clone()));
            }
        }
        InstanceEvent::InstanceBecameActive { .. } => {
            if let Some(a) = find(actions, env, "create") {
                a.finish(BUILD, at, after.host.clone(), None);
            }
        }
        InstanceEvent::InstanceFailed { fault } if rebuild_open(actions) => {
            if let Some(a) = actions.last_mut() {
                a.finish(
                    REBUILD,
                    at,
                    after.host.clone(),
                    Some((&fault.message, &fault.details)),
                );
            }
        }
        InstanceEvent::InstanceFailed { fault } => {
            if let Some(a) = find(actions, env, "create") {
                let event = if a.open_event(BUILD).is_some() {
                    BUILD
                } else {
                    SCHEDULE
                };
                let details = if fault.details.is_empty() {
                    &fault.message
                } else {
                    &fault.details
                };
                a.finish(
                    event,
                    at,
                    after.host.clone(),
                    Some((&fault.message, details)),
                );
            }
        }
        InstanceEvent::InstanceDeleteStarted => {
            let mut a = new_action(env, "delete", &actor.user_id, &actor.project_id);
            if after.host.is_some() {
                a.start(TERMINATE, at, after.host.clone());
            }
            actions.push(a);
        }
        InstanceEvent::InstanceDeleted { .. } => {
            if let Some(a) = find(actions, env, "delete")
                && a.open_event(TERMINATE).is_some()
            {
                a.finish(TERMINATE, at, after.host.clone(), None);
            }
        }
        // A step of a task already started (a snapshot's upload) is the
        // same action's event, not a new action.
        InstanceEvent::InstanceTaskStarted { action, .. }
            if find(actions, env, action.name()).is_some_and(|a| {
                a.open_event(&format!("compute_{}", action.compute_method()))
                    .is_some()
            }) => {}
        InstanceEvent::InstanceTaskStarted { action, .. } => {
            let mut a = new_action(env, action.name(), &actor.user_id, &actor.project_id);
            a.start(
                &format!("compute_{}", action.compute_method()),
                at,
                after.host.clone(),
            );
            actions.push(a);
        }
        InstanceEvent::InstanceTaskCompleted { action, .. } => {
            let event = format!("compute_{}", action.compute_method());
            match find(actions, env, action.name()) {
                Some(a)
                    if a.request_id == env.meta.correlation_id || action.task_state().is_some() =>
                {
                    a.finish(&event, at, after.host.clone(), None)
                }
                // Decided at once (os-resetState, trigger_crash_dump, a
                // restore without a host): the action of its own request.
                _ => {
                    let mut a = new_action(env, action.name(), &actor.user_id, &actor.project_id);
                    // Nova's reset_state records the action, no event.
                    if !matches!(action, novalog_schemas::ServerAction::ResetState { .. }) {
                        a.finish(&event, at, after.host.clone(), None);
                    }
                    actions.push(a);
                }
            }
        }
        InstanceEvent::InstanceTaskFailed { action, fault, .. } => {
            if let Some(a) = find(actions, env, action.name()) {
                let event = format!("compute_{}", action.compute_method());
                a.finish(
                    &event,
                    at,
                    after.host.clone(),
                    Some((&fault.message, &fault.details)),
                );
            }
        }
        InstanceEvent::InstanceLocked { .. } | InstanceEvent::InstanceUnlocked => {
            let name = if matches!(event, InstanceEvent::InstanceLocked { .. }) {
                "lock"
            } else {
                "unlock"
            };
            let mut a = new_action(env, name, &actor.user_id, &actor.project_id);
            a.finish(&format!("api_{name}"), at, None, None);
            actions.push(a);
        }
        InstanceEvent::MigrationStarted(_)
        | InstanceEvent::MigrationScheduled(_)
        | InstanceEvent::ResizeMigrationStarted(_)
        | InstanceEvent::ResizeMigrated(_)
        | InstanceEvent::ResizeFinishStarted(_)
        | InstanceEvent::ResizeFinished(_)
        | InstanceEvent::ResizeConfirmStarted(_)
        | InstanceEvent::ResizeConfirmed(_)
        | InstanceEvent::ResizeRevertStarted(_)
        | InstanceEvent::ResizeReverted(_)
        | InstanceEvent::MigrationAborted(_)
        | InstanceEvent::MigrationErrored(_)
        | InstanceEvent::LiveMigrationStarted(_)
        | InstanceEvent::LiveMigrated(_)
        | InstanceEvent::Evacuated(_)
        | InstanceEvent::RebuildStarted(_)
        | InstanceEvent::RebuildSpawnBegan
        | InstanceEvent::RebuildCompleted { .. } => record_saga(actions, env, event, after),
        // No action of their own (Nova records none for a console).
        InstanceEvent::IntentRejected { .. }
        | InstanceEvent::ConsoleOutputRead { .. }
        | InstanceEvent::InstancePowerStateSynced { .. }
        | InstanceEvent::InstanceUpdated { .. }
        | InstanceEvent::InstanceMetadataSet { .. }
        | InstanceEvent::InstanceTagsSet { .. }
        | InstanceEvent::ConsoleTokenIssued(_) => {}
    }
}

// ---- the sagas: resize, migrate, confirm, revert, rebuild, evacuate,
// live migrate, with Nova's action and event names ----

const REBUILD: &str = "compute_rebuild_instance";

fn rebuild_open(actions: &[InstanceAction]) -> bool {
    actions.last().is_some_and(|a| {
        a.action == "rebuild" && a.events.iter().any(|e| e.finish_time_ms.is_none())
    })
}

/// The action a migration of `kind` is recorded under, and the
/// conductor's event for it.
fn migration_action(
    kind: novalog_schemas::migration::MigrationType,
) -> (&'static str, &'static str) {
    use novalog_schemas::migration::MigrationType as T;
    match kind {
        T::Resize => ("resize", "conductor_migrate_server"),
        T::Migration => ("migrate", "conductor_migrate_server"),
        T::LiveMigration => ("live-migration", "conductor_live_migrate_instance"),
        T::Evacuation => ("evacuate", "conductor_rebuild_server"),
    }
}

/// The open event of the newest action, finished with `error`.
fn fail_open(
    actions: &mut [InstanceAction],
    at: i64,
    host: Option<String>,
    fault: Option<&novalog_schemas::Fault>,
) {
    let Some(a) = actions
        .iter_mut()
        .rev()
        .find(|a| a.events.iter().any(|e| e.finish_time_ms.is_none()))
    else {
        return;
    };
    let open = a
        .events
        .iter()
        .rev()
        .find(|e| e.finish_time_ms.is_none())
        .map(|e| e.event.clone())
        .expect("an open event");
    let (message, details) = fault.map_or(("Error", "Error"), |f| {
        (
            f.message.as_str(),
            if f.details.is_empty() {
                f.message.as_str()
            } else {
                f.details.as_str()
            },
        )
    });
    a.finish(&open, at, host, Some((message, details)));
}

fn record_saga(
    actions: &mut Vec<InstanceAction>,
    env: &Envelope,
    event: &InstanceEvent,
    after: &Instance,
) {
    let at = env.meta.occurred_at_ms;
    let actor = &env.meta.actor;
    let Some(m) = after.migrations.last() else {
        if let InstanceEvent::RebuildStarted(_) = event {
            let mut a = new_action(env, "rebuild", &actor.user_id, &actor.project_id);
            a.start(REBUILD, at, after.host.clone());
            actions.push(a);
        } else if let InstanceEvent::RebuildCompleted { .. } = event
            && let Some(a) = find(actions, env, "rebuild")
        {
            a.finish(REBUILD, at, after.host.clone(), None);
        }
        return;
    };
    let (name, conductor_event) = migration_action(m.migration_type);
    let source = Some(m.source_compute.clone());
    let dest = m.dest_compute.clone();
    match event {
        InstanceEvent::MigrationStarted(_) => {
            let mut a = new_action(env, name, &actor.user_id, &actor.project_id);
            a.start(conductor_event, at, None);
            actions.push(a);
        }
        InstanceEvent::MigrationScheduled(_) => {
            if let Some(a) = find(actions, env, name) {
                if a.open_event(conductor_event).is_some() {
                    a.finish(conductor_event, at, None, None);
                }
                let event = match m.migration_type {
                    novalog_schemas::migration::MigrationType::LiveMigration => {
                        "compute_live_migration"
                    }
                    novalog_schemas::migration::MigrationType::Evacuation => REBUILD,
                    _ => "compute_prep_resize",
                };
                if let Some(open) = a.events.iter().rev().find(|e| e.finish_time_ms.is_none()) {
                    // The previous destination's claim failed.
                    let open = open.event.clone();
                    a.finish(&open, at, None, Some(("Claim failed", "Claim failed")));
                    a.message = None;
                }
                a.start(event, at, dest);
            }
        }
        InstanceEvent::ResizeMigrationStarted(_) => {
            if let Some(a) = find(actions, env, name) {
                a.finish("compute_prep_resize", at, dest, None);
                a.start("compute_resize_instance", at, source);
            }
        }
        InstanceEvent::ResizeFinishStarted(_) => {
            if let Some(a) = find(actions, env, name) {
                a.finish("compute_resize_instance", at, source, None);
                a.start("compute_finish_resize", at, dest);
            }
        }
        InstanceEvent::ResizeFinished(_) => {
            if let Some(a) = find(actions, env, name) {
                a.finish("compute_finish_resize", at, dest, None);
            }
        }
        InstanceEvent::ResizeConfirmStarted(_) => {
            let mut a = new_action(env, "confirmResize", &actor.user_id, &actor.project_id);
            a.start("compute_confirm_resize", at, source);
            actions.push(a);
        }
        InstanceEvent::ResizeConfirmed(_) => {
            if let Some(a) = find(actions, env, "confirmResize") {
                a.finish("compute_confirm_resize", at, source, None);
            }
        }
        InstanceEvent::ResizeRevertStarted(_) => {
            let mut a = new_action(env, "revertResize", &actor.user_id, &actor.project_id);
            a.start("compute_revert_resize", at, dest);
            actions.push(a);
        }
        InstanceEvent::ResizeReverted(_) => {
            if let Some(a) = find(actions, env, "revertResize") {
                a.finish("compute_revert_resize", at, dest, None);
                a.finish("compute_finish_revert_resize", at, source, None);
            }
        }
        InstanceEvent::LiveMigrated(_) => {
            if let Some(a) = find(actions, env, name) {
                a.finish("compute_live_migration", at, source, None);
                a.finish("compute_post_live_migration_at_destination", at, dest, None);
            }
        }
        InstanceEvent::Evacuated(_) => {
            if let Some(a) = find(actions, env, name) {
                a.finish(REBUILD, at, dest, None);
            }
        }
        InstanceEvent::MigrationAborted(p) | InstanceEvent::MigrationErrored(p) => {
            fail_open(actions, at, after.host.clone(), p.fault.as_ref());
        }
        InstanceEvent::RebuildStarted(_) => {
            let mut a = new_action(env, "rebuild", &actor.user_id, &actor.project_id);
            a.start(REBUILD, at, after.host.clone());
            actions.push(a);
        }
        InstanceEvent::RebuildCompleted { .. } => {
            if let Some(a) = find(actions, env, "rebuild") {
                a.finish(REBUILD, at, after.host.clone(), None);
            }
        }
        // Steps that open or close no action event.
        InstanceEvent::IntentRejected { .. }
        | InstanceEvent::ConsoleOutputRead { .. }
        | InstanceEvent::InstanceCreated(_)
        | InstanceEvent::InstanceScheduled { .. }
        | InstanceEvent::InstanceRescheduled { .. }
        | InstanceEvent::InstanceBecameActive { .. }
        | InstanceEvent::InstanceFailed { .. }
        | InstanceEvent::InstanceDeleteStarted
        | InstanceEvent::InstanceDeleted { .. }
        | InstanceEvent::InstanceTaskStarted { .. }
        | InstanceEvent::InstanceTaskCompleted { .. }
        | InstanceEvent::InstanceTaskFailed { .. }
        | InstanceEvent::InstanceLocked { .. }
        | InstanceEvent::InstanceUnlocked
        | InstanceEvent::InstancePowerStateSynced { .. }
        | InstanceEvent::InstanceUpdated { .. }
        | InstanceEvent::InstanceMetadataSet { .. }
        | InstanceEvent::InstanceTagsSet { .. }
        | InstanceEvent::ResizeMigrated(_)
        | InstanceEvent::LiveMigrationStarted(_)
        | InstanceEvent::RebuildSpawnBegan
        | InstanceEvent::ConsoleTokenIssued(_) => {}
    }
}

/// The page `GET /servers/{id}/os-instance-actions` shows: newest first,
/// changed within [since, before], after the action of request `marker`,
/// at most `limit`.
pub fn page<'a>(
    actions: &'a [InstanceAction],
    since_ms: Option<i64>,
    before_ms: Option<i64>,
    marker: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<&'a InstanceAction>, String> {
    let mut newest_first: Vec<&InstanceAction> = actions
        .iter()
        .rev()
        .filter(|a| since_ms.is_none_or(|t| a.updated_at_ms >= t))
        .filter(|a| before_ms.is_none_or(|t| a.updated_at_ms <= t))
        .collect();
    if let Some(m) = marker {
        let pos = actions
            .iter()
            .rev()
            .position(|a| a.request_id == m)
            .ok_or_else(|| format!("Marker {m} could not be found."))?;
        let marker_action = actions.iter().rev().nth(pos).expect("found");
        let after = newest_first
            .iter()
            .position(|a| std::ptr::eq(*a, marker_action))
            .map_or_else(
                // The marker is filtered out: start after its place.
                || {
                    newest_first
                        .iter()
                        .position(|a| a.start_time_ms < marker_action.start_time_ms)
                        .unwrap_or(newest_first.len())
                },
                |p| p + 1,
            );
        newest_first.drain(..after);
    }
    if let Some(l) = limit {
        newest_first.truncate(l);
    }
    Ok(newest_first)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use novalog_schemas::events::InstanceCreated;
    use novalog_schemas::instance::evolve;
    use novalog_schemas::{Actor, Fault, Meta, ServerAction, TaskState, VmState};
    use uuid::Uuid;

    use super::*;

    struct Log {
        id: Uuid,
        version: u64,
        at: i64,
        inst: Option<Instance>,
        actions: Vec<InstanceAction>,
    }

    impl Log {
        fn new() -> Self {
            Log {
                id: Uuid::new_v4(),
                version: 0,
                at: 1_000,
                inst: None,
                actions: Vec::new(),
            }
        }

        fn apply(&mut self, request: &str, actor: &str, event: Event) {
            self.version += 1;
            self.at += 1_000;
            let mut meta = Meta::origin(
                Uuid::new_v4(),
                request.into(),
                Actor {
                    user_id: format!("{actor}-user"),
                    project_id: actor.into(),
                    roles: vec![],
                },
                self.id.to_string(),
            );
            meta.aggregate_version = self.version;
            meta.occurred_at_ms = self.at;
            let env = Envelope { meta, event };
            self.inst = evolve(self.inst.take(), &env);
            record(&mut self.actions, &env, self.inst.as_ref().unwrap());
        }
    }

    fn created() -> Event {
        Event::Instance(InstanceEvent::InstanceCreated(Box::new(InstanceCreated {
            name: "vm".into(),
            project_id: "p1".into(),
            user_id: "p1-user".into(),
            flavor: crate::views::flavors::tests::tiny(),
            image: crate::views::servers::tests::cirros(),
            metadata: BTreeMap::new(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: vec![],
            reservation_id: "r-1".into(),
            launch_index: 0,
            created_at_ms: 2_000,
            scheduler_hints: BTreeMap::new(),
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            requested_host: None,
        })))
    }

    fn built() -> Log {
        let mut log = Log::new();
        log.apply("req-create", "p1", created());
        log.apply(
            "req-create",
            "p1",
            Event::Instance(InstanceEvent::InstanceScheduled {
                host: "h1".into(),
                alternates: vec![],
                attempt: 1,
            }),
        );
        log.apply(
            "req-create",
            "p1",
            Event::Instance(InstanceEvent::InstanceBecameActive {
                power_state: novalog_schemas::PowerState::Running,
                launched_at_ms: 4_000,
            }),
        );
        log
    }

    #[test]
    fn a_build_is_one_create_action_with_a_schedule_and_a_build_event() {
        let log = built();
        assert_eq!(log.actions.len(), 1);
        let a = &log.actions[0];
        assert_eq!(
            (a.action.as_str(), a.request_id.as_str(), a.user_id.as_str()),
            ("create", "req-create", "p1-user")
        );
        assert_eq!(a.message, None);
        let events: Vec<_> = a
            .events
            .iter()
            .map(|e| (e.event.as_str(), e.result.as_deref(), e.host.as_deref()))
            .collect();
        assert_eq!(
            events,
            [
                (SCHEDULE, Some("Success"), None),
                (BUILD, Some("Success"), Some("h1"))
            ]
        );
        assert_eq!(a.events[1].finish_time_ms, Some(a.updated_at_ms));
    }

    #[test]
    fn an_action_is_opened_by_its_request_and_closed_by_the_hosts_report() {
        let mut log = built();
        log.apply(
            "req-stop",
            "p1",
            Event::Instance(InstanceEvent::InstanceTaskStarted {
                action: ServerAction::Stop,
                task_state: TaskState::PoweringOff,
            }),
        );
        let a = log.actions.last().unwrap();
        assert_eq!(
            (a.action.as_str(), a.request_id.as_str()),
            ("stop", "req-stop")
        );
        assert_eq!(a.events[0].event, "compute_stop_instance");
        assert_eq!(a.events[0].result, None, "still running");
        log.apply(
            "req-stop",
            "p1",
            Event::Instance(InstanceEvent::InstanceTaskCompleted {
                action: ServerAction::Stop,
                vm_state: VmState::Stopped,
                power_state: novalog_schemas::PowerState::Shutdown,
            }),
        );
        let a = log.actions.last().unwrap();
        assert_eq!(a.events[0].result.as_deref(), Some("Success"));
        assert_eq!(a.events[0].host.as_deref(), Some("h1"));

        log.apply(
            "req-boot",
            "p1",
            Event::Instance(InstanceEvent::InstanceTaskStarted {
                action: ServerAction::Reboot { hard: true },
                task_state: TaskState::RebootingHard,
            }),
        );
        log.apply(
            "req-boot",
            "p1",
            Event::Instance(InstanceEvent::InstanceTaskFailed {
                action: ServerAction::Reboot { hard: true },
                vm_state: VmState::Error,
                power_state: novalog_schemas::PowerState::Shutdown,
                fault: Fault {
                    code: 500,
                    message: "boom".into(),
                    details: "trace".into(),
                    created_at_ms: 0,
                },
            }),
        );
        let a = log.actions.last().unwrap();
        assert_eq!(a.action, "reboot");
        assert_eq!(a.message.as_deref(), Some("Error"));
        let e = &a.events[0];
        assert_eq!(
            (
                e.event.as_str(),
                e.result.as_deref(),
                e.details.as_deref(),
                e.traceback.as_deref()
            ),
            (
                "compute_reboot_instance",
                Some("Error"),
                Some("boom"),
                Some("trace")
            )
        );

        log.apply(
            "req-lock",
            "admin",
            Event::Instance(InstanceEvent::InstanceLocked {
                locked_by: "admin".into(),
                reason: None,
            }),
        );
        log.apply(
            "req-del",
            "p1",
            Event::Instance(InstanceEvent::InstanceDeleteStarted),
        );
        log.apply(
            "req-del",
            "p1",
            Event::Instance(InstanceEvent::InstanceDeleted { deleted_at_ms: 1 }),
        );
        let names: Vec<_> = log.actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(names, ["create", "stop", "reboot", "lock", "delete"]);
        let lock = &log.actions[3];
        assert_eq!(
            (lock.user_id.as_str(), lock.project_id.as_str()),
            ("admin-user", "admin")
        );
        assert_eq!(lock.events[0].event, "api_lock");
        let del = &log.actions[4];
        assert_eq!(del.events[0].event, TERMINATE);
        assert_eq!(del.events[0].result.as_deref(), Some("Success"));
    }

    #[test]
    fn pages_are_newest_first_after_the_marker() {
        let mut log = built();
        for r in ["req-a", "req-b", "req-c"] {
            log.apply(
                r,
                "p1",
                Event::Instance(InstanceEvent::InstanceLocked {
                    locked_by: "owner".into(),
                    reason: None,
                }),
            );
        }
        let ids = |p: Vec<&InstanceAction>| -> Vec<String> {
            p.iter().map(|a| a.request_id.clone()).collect()
        };
        let all = page(&log.actions, None, None, None, None).unwrap();
        assert_eq!(ids(all), ["req-c", "req-b", "req-a", "req-create"]);
        let p = page(&log.actions, None, None, None, Some(2)).unwrap();
        assert_eq!(ids(p), ["req-c", "req-b"]);
        let p = page(&log.actions, None, None, Some("req-b"), Some(2)).unwrap();
        assert_eq!(ids(p), ["req-a", "req-create"]);
        let since = log.actions[2].updated_at_ms;
        let p = page(&log.actions, Some(since), None, None, None).unwrap();
        assert_eq!(ids(p), ["req-c", "req-b"]);
        let p = page(&log.actions, None, Some(since), None, None).unwrap();
        assert_eq!(ids(p), ["req-b", "req-a", "req-create"]);
        assert_eq!(
            page(&log.actions, None, None, Some("req-nope"), None).unwrap_err(),
            "Marker req-nope could not be found."
        );
    }

    fn migration(id: Uuid) -> novalog_schemas::migration::Migration {
        novalog_schemas::migration::Migration {
            id: 1,
            uuid: id,
            migration_type: novalog_schemas::migration::MigrationType::Resize,
            status: novalog_schemas::migration::MigrationStatus::PreMigrating,
            source_compute: "h1".into(),
            dest_compute: None,
            old_flavor: crate::views::flavors::tests::tiny(),
            new_flavor: crate::views::flavors::tests::tiny(),
            created_at_ms: 0,
            updated_at_ms: 0,
            alternates: vec![],
            attempt: 0,
            original_vm_state: VmState::Active,
            original_power_state: novalog_schemas::PowerState::Running,
            requested_host: None,
            project_id: "p1".into(),
            user_id: "p1-user".into(),
            stop_at_destination: false,
        }
    }

    fn step(mid: Uuid, host: Option<&str>) -> Box<novalog_schemas::migration::MigrationProgress> {
        Box::new(novalog_schemas::migration::MigrationProgress {
            host: host.map(str::to_owned),
            ..novalog_schemas::migration::MigrationProgress::of(mid)
        })
    }

    #[test]
    fn a_resize_and_its_confirm_are_two_actions_with_novas_events() {
        let mut log = built();
        let mid = Uuid::new_v4();
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration(mid)))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::MigrationScheduled(step(mid, Some("h2")))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::ResizeMigrationStarted(step(mid, None))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::ResizeMigrated(step(mid, None))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::ResizeFinishStarted(step(mid, None))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::ResizeFinished(step(mid, None))),
        );
        log.apply(
            "req-confirm",
            "p1",
            Event::Instance(InstanceEvent::ResizeConfirmStarted(step(mid, None))),
        );
        log.apply(
            "req-confirm",
            "p1",
            Event::Instance(InstanceEvent::ResizeConfirmed(step(mid, None))),
        );
        let names: Vec<&str> = log.actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(names, ["create", "resize", "confirmResize"]);
        let resize = &log.actions[1];
        assert_eq!(resize.request_id, "req-resize");
        let events: Vec<(&str, Option<&str>)> = resize
            .events
            .iter()
            .map(|e| (e.event.as_str(), e.result.as_deref()))
            .collect();
        assert_eq!(
            events,
            [
                ("conductor_migrate_server", Some("Success")),
                ("compute_prep_resize", Some("Success")),
                ("compute_resize_instance", Some("Success")),
                ("compute_finish_resize", Some("Success")),
            ]
        );
        assert_eq!(resize.events[1].host.as_deref(), Some("h2"));
        assert_eq!(log.actions[2].events[0].event, "compute_confirm_resize");
        assert_eq!(log.actions[2].events[0].result.as_deref(), Some("Success"));
    }

    #[test]
    fn a_failed_resize_step_marks_its_event_and_action_as_errors() {
        let mut log = built();
        let mid = Uuid::new_v4();
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration(mid)))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::MigrationScheduled(step(mid, Some("h2")))),
        );
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::ResizeMigrationStarted(step(mid, None))),
        );
        let mut p = step(mid, None);
        p.fault = Some(Fault {
            code: 500,
            message: "migrate_disk_and_power_off failed on h1".into(),
            details: "disk full".into(),
            created_at_ms: 0,
        });
        log.apply(
            "req-resize",
            "p1",
            Event::Instance(InstanceEvent::MigrationAborted(p)),
        );
        let a = &log.actions[1];
        assert_eq!(a.message.as_deref(), Some("Error"));
        let e = a.events.last().unwrap();
        assert_eq!(
            (e.event.as_str(), e.result.as_deref()),
            ("compute_resize_instance", Some("Error"))
        );
        assert_eq!(
            e.details.as_deref(),
            Some("migrate_disk_and_power_off failed on h1")
        );
    }
}
