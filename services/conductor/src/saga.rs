//! The step a saga awaits, as a type: which saga an instance is in is
//! [`Step`]'s variant, so a fact or a timeout goes to its saga by a match
//! the compiler checks, not by the spelling of a name. Each saga's own
//! steps are its file's ([`crate::resize::Step`],
//! [`crate::live_migrate::Step`]), and so is its table: a [`Row`] per
//! step saying which host answers it, where each [`Answer`] leads
//! ([`Then`]) and what silence past the deadline leads to.
//!
//! A step is spelled `<saga>:<step>` where it crosses the process (the
//! `step` of a `SagaStepTimedOut` record, the ids of those records, the
//! stored [`crate::timers::Awaiting`], the keys of `[conductor]
//! step_timeouts`); those spellings are the ones they always were.

use std::fmt;
use std::str::FromStr;

use novalog_schemas::ServerAction;
use novalog_schemas::migration::MigrationFact;
use serde::{Deserialize, Serialize};

use crate::live_migrate::Step as Live;
use crate::resize::Step as Resize;

/// A host's answer to a migration or rebuild step: the kind of
/// [`novalog_schemas::ComputeFact`] that carries a [`MigrationFact`]
/// (the dispatcher names one for each), as the sagas' tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// ResizeClaimSucceeded: the destination holds the flavor.
    Claimed,
    /// ResizeClaimFailed: the destination has no room (or refused).
    ClaimFailed,
    /// DiskMigratedAndPoweredOff, on the source.
    DiskMigrated,
    /// MigrationFinishedOnDest: the guest runs there.
    FinishedOnDest,
    /// MigrationConfirmedOnSource: the source let go.
    ConfirmedOnSource,
    /// MigrationRevertedOnDest: the destination let go.
    RevertedOnDest,
    /// RevertFinishedOnSource: the guest is back on the source.
    RevertFinishedOnSource,
    /// InstanceLiveMigrated: the running guest left the source.
    LiveMigrated,
    /// RebuildSpawnStarted: the host began spawning the rebuilt guest.
    SpawnStarted,
    /// InstanceRebuilt.
    Rebuilt,
    /// MigrationStepFailed: the driver step the fact names failed.
    StepFailed,
}

/// One row of a saga's table (`S` its steps, `E` its ends, `R` its
/// compensations): the host a step awaits, every answer the step takes
/// and what follows it, and what follows silence past the step's
/// deadline. A fact the row does not list answers some other step: it is
/// stale (or redelivered) and changes nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<S: 'static, E: 'static, R: 'static> {
    /// The host whose answer the step awaits.
    pub host: Side,
    /// The driver step a host names when it reports this one failed
    /// (MigrationStepFailed's `step`); `None`: any failure the awaited
    /// host reports about the operation (it runs one command of it).
    pub driver_step: Option<&'static str>,
    pub answers: &'static [(Answer, Then<S, E, R>)],
    pub timed_out: Then<S, E, R>,
}

/// What follows an answer (or a deadline) in a saga's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then<S, E, R> {
    /// Recorded; the same step is still awaited.
    Progress,
    /// The next step: its records written, its command sent, its answer
    /// awaited.
    Next(S),
    /// The saga ends as `E` says (nothing awaited any more).
    Done(E),
    /// Undone as `R` says: a compensation, or ERROR where none is left.
    Recover(R),
}

/// The host a step is about: the one the instance is on when the saga
/// starts (a rebuild's only host), or the one it moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Dest,
}

impl<S: Copy, E: Copy, R: Copy> Row<S, E, R> {
    /// Where `answer` (carried by `f`) leads from this step, for the
    /// claim `attempt` in progress; `None`: it answers something else.
    /// A claim's answer counts only for the attempt awaited, a failure
    /// only for the driver step this one runs.
    pub(crate) fn on(
        &self,
        answer: Answer,
        f: &MigrationFact,
        attempt: u32,
    ) -> Option<Then<S, E, R>> {
        let current = match answer {
            Answer::Claimed | Answer::ClaimFailed => f.attempt == attempt,
            Answer::StepFailed => self.driver_step.is_none_or(|s| s == f.step),
            Answer::DiskMigrated
            | Answer::FinishedOnDest
            | Answer::ConfirmedOnSource
            | Answer::RevertedOnDest
            | Answer::RevertFinishedOnSource
            | Answer::LiveMigrated
            | Answer::SpawnStarted
            | Answer::Rebuilt => true,
        };
        if !current {
            return None;
        }
        self.answers
            .iter()
            .find(|(a, _)| *a == answer)
            .map(|(_, then)| *then)
    }
}

/// Checks a saga's table: every step in `all` has a row that moves it on
/// (an answer, or for a mere wait its deadline, leading to another step
/// or an end), that undoes it when its host reports it failed, that never
/// leaves it waiting on silence and lists each answer once; and every
/// step is reached from `entries` (where the saga enters the table from
/// outside it) by the table's own `Next`s. `step_of` names the step a
/// `Next` leads to.
#[cfg(test)]
pub(crate) fn check_table<S, N, E, R>(
    all: &[S],
    entries: &[S],
    row: impl Fn(S) -> Row<N, E, R>,
    step_of: impl Fn(N) -> S,
) where
    S: Copy + PartialEq + fmt::Debug,
    N: Copy + 'static,
    E: Copy + 'static,
    R: Copy + 'static,
{
    let moves_on = |t: &Then<N, E, R>| matches!(t, Then::Next(_) | Then::Done(_));
    let mut reached: Vec<S> = entries.to_vec();
    let mut i = 0;
    while i < reached.len() {
        let r = row(reached[i]);
        let nexts = r.answers.iter().map(|(_, t)| t).chain([&r.timed_out]);
        for t in nexts {
            if let Then::Next(n) = t {
                let next = step_of(*n);
                assert!(all.contains(&next), "{next:?} is not listed");
                if !reached.contains(&next) {
                    reached.push(next);
                }
            }
        }
        i += 1;
    }
    for &step in all {
        let r = row(step);
        assert!(reached.contains(&step), "{step:?} is never reached");
        assert!(
            !matches!(r.timed_out, Then::Progress),
            "{step:?} would wait forever on a silent host"
        );
        if r.answers.is_empty() {
            assert!(moves_on(&r.timed_out), "{step:?}: a wait must end");
            continue;
        }
        assert!(
            r.answers.iter().any(|(_, t)| moves_on(t)),
            "{step:?} has no answer that moves it on"
        );
        assert!(
            r.answers.iter().any(|(a, t)| {
                matches!(a, Answer::StepFailed | Answer::ClaimFailed)
                    && matches!(t, Then::Recover(_))
            }),
            "{step:?} has no compensation for a failure"
        );
        for (n, (a, _)) in r.answers.iter().enumerate() {
            assert!(
                r.answers[n + 1..].iter().all(|(b, _)| b != a),
                "{step:?} lists {a:?} twice"
            );
        }
    }
}

/// What an instance in a saga waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Build: from creation until ACTIVE or ERROR (`build`).
    Build,
    /// Any migration (resize, cold, live, evacuate) waiting for the
    /// scheduler's destinations (`resize:schedule`).
    Schedule,
    Resize(Resize),
    /// Rebuild: the host rebuilds the guest (`rebuild:rebuild`).
    Rebuild,
    /// Evacuate: the destination claims and rebuilds (`evacuate:rebuild`).
    Evacuate,
    LiveMigrate(Live),
    /// A server action on its host, by Nova's action name (`action:stop`).
    Action(&'static str),
    /// Unshelve of an offloaded instance: the scheduler picks a host (no
    /// host awaited), then that host spawns it (`unshelve:spawn`).
    Unshelve,
    /// A shelved instance waits `shelved_offload_time` to be offloaded
    /// (`shelve:offload`).
    ShelvedOffload,
    /// A SOFT_DELETED instance waits `reclaim_instance_interval` to be
    /// deleted for real (`delete:reclaim`).
    Reclaim,
}

/// The actions a host carries out, each with a task state of its own.
pub(crate) const HOST_ACTIONS: [ServerAction; 16] = [
    ServerAction::Reboot { hard: false },
    ServerAction::Reboot { hard: true },
    ServerAction::Stop,
    ServerAction::Start,
    ServerAction::Pause,
    ServerAction::Unpause,
    ServerAction::Suspend,
    ServerAction::Resume,
    ServerAction::Shelve { image_id: None },
    ServerAction::ShelveOffload,
    // Unshelving a shelved (not offloaded) instance powers it on where it is.
    ServerAction::Unshelve {
        availability_zone: None,
        host: None,
    },
    ServerAction::Rescue { image_id: None },
    ServerAction::Unrescue,
    ServerAction::CreateImage {
        image_id: None,
        name: String::new(),
        metadata: std::collections::BTreeMap::new(),
    },
    ServerAction::SoftDelete,
    ServerAction::Restore,
];

impl Step {
    /// The step without its saga: what a fault or a driver calls it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Build => "build",
            Step::Schedule => "schedule",
            Step::Resize(s) => s.name(),
            Step::Rebuild | Step::Evacuate => "rebuild",
            Step::LiveMigrate(s) => s.name(),
            Step::Action(a) => a,
            Step::Unshelve => "spawn",
            Step::ShelvedOffload => "offload",
            Step::Reclaim => "reclaim",
        }
    }

    fn saga(self) -> &'static str {
        match self {
            Step::Build => "build",
            Step::Schedule | Step::Resize(_) => "resize",
            Step::Rebuild => "rebuild",
            Step::Evacuate => "evacuate",
            Step::LiveMigrate(_) => "live",
            Step::Action(_) => "action",
            Step::Unshelve => "unshelve",
            Step::ShelvedOffload => "shelve",
            Step::Reclaim => "delete",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Build => f.write_str("build"),
            s => write!(f, "{}:{}", s.saga(), s.name()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown saga step {0:?}")]
pub struct UnknownStep(String);

impl FromStr for Step {
    type Err = UnknownStep;

    fn from_str(s: &str) -> Result<Self, UnknownStep> {
        let unknown = || UnknownStep(s.to_owned());
        if s == "build" {
            return Ok(Step::Build);
        }
        let (saga, step) = s.split_once(':').ok_or_else(unknown)?;
        Ok(match (saga, step) {
            ("resize", "schedule") => Step::Schedule,
            ("resize", step) => Step::Resize(Resize::parse(step).ok_or_else(unknown)?),
            ("rebuild", "rebuild") => Step::Rebuild,
            ("evacuate", "rebuild") => Step::Evacuate,
            ("live", step) => Step::LiveMigrate(Live::parse(step).ok_or_else(unknown)?),
            ("unshelve", "spawn") => Step::Unshelve,
            ("shelve", "offload") => Step::ShelvedOffload,
            ("delete", "reclaim") => Step::Reclaim,
            ("action", name) => Step::Action(
                HOST_ACTIONS
                    .iter()
                    .map(ServerAction::name)
                    .find(|n| *n == name)
                    .ok_or_else(unknown)?,
            ),
            _ => return Err(unknown()),
        })
    }
}

/// Stored as it is spelled.
impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step spelled as it was when steps were strings, so stored
    /// deadlines, timeout record ids and `step_timeouts` keys still match.
    #[test]
    fn steps_keep_their_spelling_both_ways() {
        let steps = [
            (Step::Build, "build"),
            (Step::Schedule, "resize:schedule"),
            (Step::Resize(Resize::PrepResize), "resize:prep_resize"),
            (
                Step::Resize(Resize::MigrateDisk),
                "resize:migrate_disk_and_power_off",
            ),
            (
                Step::Resize(Resize::FinishMigration),
                "resize:finish_migration",
            ),
            (Step::Resize(Resize::Confirm), "resize:confirm_migration"),
            (Step::Resize(Resize::Revert), "resize:revert_migration"),
            (
                Step::Resize(Resize::FinishRevert),
                "resize:finish_revert_migration",
            ),
            (Step::Resize(Resize::Compensate), "resize:compensate"),
            (Step::Resize(Resize::AutoConfirm), "resize:auto_confirm"),
            (Step::Rebuild, "rebuild:rebuild"),
            (Step::Evacuate, "evacuate:rebuild"),
            (Step::LiveMigrate(Live::Prep), "live:prep"),
            (
                Step::LiveMigrate(Live::LiveMigration),
                "live:live_migration",
            ),
            (Step::LiveMigrate(Live::Post), "live:post_live_migration"),
            (Step::Action("reboot"), "action:reboot"),
            (Step::Action("stop"), "action:stop"),
            (Step::Action("shelve"), "action:shelve"),
            (Step::Action("unrescue"), "action:unrescue"),
            (Step::Unshelve, "unshelve:spawn"),
            (Step::ShelvedOffload, "shelve:offload"),
            (Step::Reclaim, "delete:reclaim"),
            (Step::Action("createImage"), "action:createImage"),
            (Step::Action("restore"), "action:restore"),
            (Step::Action("delete"), "action:delete"),
        ];
        for (step, spelled) in steps {
            assert_eq!(step.to_string(), spelled);
            assert_eq!(spelled.parse::<Step>().unwrap(), step);
        }
        for bad in [
            "resize",
            "resize:nap",
            "action:lock",
            "live:",
            "shelve:x",
            "unshelve:x",
        ] {
            assert!(bad.parse::<Step>().is_err(), "{bad}");
        }
    }
}
