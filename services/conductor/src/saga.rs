//! The step a saga awaits, as a type: which saga an instance is in is
//! [`Step`]'s variant, so a fact or a timeout goes to its saga by a match
//! the compiler checks, not by the spelling of a name. Each saga's own
//! steps are its file's ([`crate::resize::Step`],
//! [`crate::live_migrate::Step`]).
//!
//! A step is spelled `<saga>:<step>` where it crosses the process (the
//! `step` of a `SagaStepTimedOut` record, the ids of those records, the
//! stored [`crate::timers::Awaiting`], the keys of `[conductor]
//! step_timeouts`); those spellings are the ones they always were.

use std::fmt;
use std::str::FromStr;

use novalog_schemas::ServerAction;
use serde::{Deserialize, Serialize};

use crate::live_migrate::Step as Live;
use crate::resize::Step as Resize;

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
}

/// The actions a host carries out, each with a task state of its own.
pub(crate) const HOST_ACTIONS: [ServerAction; 8] = [
    ServerAction::Reboot { hard: false },
    ServerAction::Reboot { hard: true },
    ServerAction::Stop,
    ServerAction::Start,
    ServerAction::Pause,
    ServerAction::Unpause,
    ServerAction::Suspend,
    ServerAction::Resume,
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
        ];
        for (step, spelled) in steps {
            assert_eq!(step.to_string(), spelled);
            assert_eq!(spelled.parse::<Step>().unwrap(), step);
        }
        for bad in ["resize", "resize:nap", "action:lock", "live:", "shelve:x"] {
            assert!(bad.parse::<Step>().is_err(), "{bad}");
        }
    }
}
