//! The power-state sync (Nova's `_sync_instance_power_state`): a host
//! reports the power state its hypervisor holds a guest in when it differs
//! from what the host last recorded (a guest shut down from inside, a
//! domain destroyed behind Novalog's back); the conductor corrects the
//! recorded power state and, where Nova does, stops the instance through
//! the ordinary stop action, visible in `os-instance-actions`.

use novalog_schemas::{
    ComputeCommand, Envelope, Event, InstanceEvent, PowerState, ServerAction, TaskState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::saga::Step;

/// What the sync does about one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correction {
    /// The recorded power state becomes the observed one.
    pub record: bool,
    /// The instance is stopped (Nova's `compute_api.stop` or `force_stop`):
    /// the guest is powered off and the instance ends STOPPED.
    pub stop: bool,
}

const NOTHING: Correction = Correction {
    record: false,
    stop: false,
};

/// Nova's rules, by the instance's vm_state and the guest's observed power
/// state. Nothing while a task is in progress (the task's own result
/// settles the state); otherwise the recorded power state follows the
/// hypervisor, and:
/// - ACTIVE, guest shut down or crashed: stopped;
/// - STOPPED, guest running (or paused, suspended): powered off again;
/// - PAUSED, guest shut down or crashed: stopped;
/// - BUILDING, RESCUED, RESIZED, SUSPENDED, ERROR (and the shelved and
///   deleted states, which have no guest to correct): the power state only.
pub fn decide(
    vm_state: VmState,
    task_state: Option<TaskState>,
    recorded: PowerState,
    observed: PowerState,
) -> Correction {
    if task_state.is_some() {
        return NOTHING;
    }
    let down = matches!(observed, PowerState::Shutdown | PowerState::Crashed);
    let stop = match vm_state {
        VmState::Active | VmState::Paused => down,
        VmState::Stopped => !matches!(
            observed,
            PowerState::NoState | PowerState::Shutdown | PowerState::Crashed
        ),
        VmState::Building
        | VmState::Rescued
        | VmState::Resized
        | VmState::Suspended
        | VmState::Error
        | VmState::SoftDeleted
        | VmState::Deleted
        | VmState::Shelved
        | VmState::ShelvedOffloaded => false,
    };
    Correction {
        record: recorded != observed,
        stop,
    }
}

/// A host's observation of one guest. Observations from a host the
/// instance is not on (it moved) or of an instance the conductor does not
/// know are stale and dropped.
pub(crate) fn on_observed(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    host: &str,
    observed: PowerState,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if i.is_deleted() || i.host.as_deref() != Some(host) || c.awaiting.contains_key(&id) {
        return Vec::new();
    }
    let fix = decide(i.vm_state, i.task_state, i.power_state, observed);
    if fix == NOTHING {
        return Vec::new();
    }
    tracing::info!(
        instance = %id,
        host,
        vm_state = i.vm_state.as_str(),
        recorded = ?i.power_state,
        observed = ?observed,
        stop = fix.stop,
        "power-state sync"
    );
    let project = i.project_id.clone();
    let mut out = Vec::new();
    if fix.record {
        let synced = Event::Instance(InstanceEvent::InstancePowerStateSynced {
            power_state: observed,
        });
        out.push(c.instance_event(&env.meta, "power-synced", id, &project, synced));
    }
    if fix.stop {
        let action = ServerAction::Stop;
        let Some(task_state) = action.task_state() else {
            return out;
        };
        let started = Event::Instance(InstanceEvent::InstanceTaskStarted {
            action: action.clone(),
            task_state,
        });
        out.push(c.instance_event(&env.meta, "power-sync-stop", id, &project, started));
        out.push(emit(
            Dest::Compute,
            host.to_owned(),
            &env.meta,
            "power-sync-perform",
            id.to_string(),
            Event::Compute(ComputeCommand::PerformServerAction {
                instance_id: id,
                host: host.to_owned(),
                action: action.clone(),
            }),
        ));
        c.await_step(
            id,
            &env.meta,
            Step::Action(action.name()),
            None,
            Some(host.to_owned()),
            now_ms,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use PowerState as P;
    use VmState as V;

    #[test]
    fn novas_rules() {
        let stop = Correction {
            record: true,
            stop: true,
        };
        let record = Correction {
            record: true,
            stop: false,
        };
        let cases = [
            // ACTIVE, shut down from inside or crashed: stopped.
            (V::Active, P::Running, P::Shutdown, stop),
            (V::Active, P::Running, P::Crashed, stop),
            // ACTIVE, paused, suspended or gone behind our back: recorded
            // only (Nova logs a warning).
            (V::Active, P::Running, P::Paused, record),
            (V::Active, P::Running, P::Suspended, record),
            (V::Active, P::Running, P::NoState, record),
            // STOPPED, running again: powered off.
            (V::Stopped, P::Shutdown, P::Running, stop),
            (V::Stopped, P::Shutdown, P::Paused, stop),
            (V::Stopped, P::Shutdown, P::NoState, record),
            (V::Stopped, P::Shutdown, P::Shutdown, NOTHING),
            // PAUSED, shut down: stopped.
            (V::Paused, P::Paused, P::Shutdown, stop),
            (V::Paused, P::Paused, P::Running, record),
            // States Nova leaves alone but for the power state.
            (V::Suspended, P::Suspended, P::Shutdown, record),
            (V::Error, P::Running, P::Shutdown, record),
            (V::Resized, P::Running, P::Shutdown, record),
            (V::Rescued, P::Running, P::Shutdown, record),
            (V::Building, P::NoState, P::Running, record),
            // Agreeing: nothing.
            (V::Active, P::Running, P::Running, NOTHING),
        ];
        for (vm, recorded, observed, want) in cases {
            assert_eq!(
                decide(vm, None, recorded, observed),
                want,
                "{vm:?} recorded {recorded:?} observed {observed:?}"
            );
        }
    }

    #[test]
    fn nothing_while_a_task_is_in_progress() {
        for task in [
            TaskState::PoweringOff,
            TaskState::RebootingHard,
            TaskState::ResizeMigrating,
        ] {
            assert_eq!(
                decide(V::Active, Some(task), P::Running, P::Shutdown),
                NOTHING
            );
        }
    }

    mod flows {
        use novalog_schemas::{ComputeFact, Event, PowerState, ServerAction, TaskState, VmState};
        use uuid::Uuid;

        use crate::core::{Conductor, Dest};
        use crate::tests::{NOW, create, fact, given, selected, spawned, types};

        fn active_on(host: &str) -> (Conductor, Uuid) {
            let mut c = given();
            let id = Uuid::new_v4();
            create(&mut c, id);
            selected(&mut c, id, &[host]);
            spawned(&mut c, id, host, 1);
            (c, id)
        }

        fn observe(
            c: &mut Conductor,
            id: Uuid,
            host: &str,
            p: PowerState,
        ) -> Vec<crate::core::Emit> {
            c.handle(
                &fact(Event::ComputeFact(ComputeFact::PowerStateObserved {
                    instance_id: id,
                    host: host.into(),
                    power_state: p,
                })),
                NOW,
            )
        }

        /// ACTIVE, guest shut down behind Novalog's back: the power state
        /// is corrected and the server stopped through the stop action,
        /// whose result lands it in STOPPED.
        #[test]
        fn a_guest_that_went_down_is_stopped() {
            let (mut c, id) = active_on("h1");
            let out = observe(&mut c, id, "h1", PowerState::Shutdown);
            assert_eq!(
                types(&out),
                [
                    "InstancePowerStateSynced",
                    "InstanceTaskStarted",
                    "PerformServerAction"
                ]
            );
            let cmd = &out[2];
            assert_eq!((cmd.dest, cmd.key.as_str()), (Dest::Compute, "h1"));
            let i = &c.instances[&id];
            assert_eq!(i.power_state, PowerState::Shutdown);
            assert_eq!(i.task_state, Some(TaskState::PoweringOff));

            // Reported again while the stop runs: nothing more.
            assert!(observe(&mut c, id, "h1", PowerState::Shutdown).is_empty());

            c.handle(
                &fact(Event::ComputeFact(ComputeFact::ServerActionPerformed {
                    instance_id: id,
                    host: "h1".into(),
                    action: ServerAction::Stop,
                    power_state: PowerState::Shutdown,
                })),
                NOW,
            );
            let i = &c.instances[&id];
            assert_eq!((i.vm_state, i.task_state), (VmState::Stopped, None));
        }

        /// A state Nova only records (paused behind Novalog's back); and a
        /// report from a host the server is not on, or of a server
        /// unknown, changes nothing.
        #[test]
        fn recorded_only_and_stale_reports() {
            let (mut c, id) = active_on("h1");
            let out = observe(&mut c, id, "h1", PowerState::Paused);
            assert_eq!(types(&out), ["InstancePowerStateSynced"]);
            assert_eq!(c.instances[&id].vm_state, VmState::Active);
            assert_eq!(c.instances[&id].power_state, PowerState::Paused);

            assert!(observe(&mut c, id, "h2", PowerState::Shutdown).is_empty());
            assert!(observe(&mut c, Uuid::new_v4(), "h1", PowerState::Shutdown).is_empty());
            // Agreeing with the record: nothing.
            assert!(observe(&mut c, id, "h1", PowerState::Paused).is_empty());
        }
    }
}
