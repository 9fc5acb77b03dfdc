//! A server's history as a timeline: each record's [`Mark`] and the
//! [`Step`]s it went through, one per run of a task state (`scheduling`,
//! `spawning`, `powering-off`, `resize_migrating`, ...), from the record
//! that started the task to the one that ended it.
//!
//! A step in which a failure was recorded (a claim or spawn that failed,
//! a step past its deadline, no valid host) is [`Outcome::Failed`]; one in
//! which the saga then undid what it had done (a reschedule to an
//! alternate, an aborted migration, a dropped claim) is
//! [`Outcome::Compensated`].

use serde::Serialize;

use crate::Entry;

/// What a record means for its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Normal,
    /// Something failed: a claim, a spawn, a step's deadline, a task.
    Failure,
    /// The saga undoing or retrying after a failure.
    Compensation,
}

/// The mark of a record by its type.
pub fn mark(type_name: &str) -> Mark {
    const COMPENSATIONS: &[&str] = &[
        "InstanceRescheduled",
        "MigrationAborted",
        "DropMigrationClaim",
        "CleanupEvacuatedInstance",
        "EvacuatedInstanceCleanedUp",
    ];
    const FAILURES: &[&str] = &["Failed", "TimedOut", "Errored", "NoValidHost", "Rejected"];
    if COMPENSATIONS.contains(&type_name) {
        Mark::Compensation
    } else if FAILURES.iter().any(|f| type_name.contains(f)) {
        Mark::Failure
    } else {
        Mark::Normal
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    /// Still in this task at the end of the history.
    Running,
    Failed,
    Compensated,
}

/// One record as the timeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub at_ms: i64,
    pub type_name: String,
    pub request_id: String,
    /// The task state after the record, for records of `instances`
    /// (`None` for the other topics; `Some("-")`: no task).
    pub task_state: Option<String>,
}

impl Point {
    pub fn of(e: &Entry) -> Self {
        Point {
            at_ms: e.env.meta.occurred_at_ms,
            type_name: e.env.event.type_name().to_owned(),
            request_id: e.env.meta.correlation_id.clone(),
            task_state: e.state.as_ref().map(|s| s.task_state.clone()),
        }
    }
}

/// One run of a task state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The task state (`spawning`, ...).
    pub name: String,
    /// The request that started it.
    pub request_id: String,
    pub start_ms: i64,
    /// `None` while it runs.
    pub end_ms: Option<i64>,
    pub outcome: Outcome,
}

impl Step {
    /// How long it took (until `now_ms` while it runs).
    pub fn duration_ms(&self, now_ms: i64) -> i64 {
        (self.end_ms.unwrap_or(now_ms) - self.start_ms).max(0)
    }
}

/// The steps of a history, oldest first. A step runs from the record
/// that set its task state to the record of `instances` that changed it;
/// the records between (of any topic) decide its outcome.
pub fn steps(points: &[Point]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut open: Option<(Step, bool, bool)> = None;
    for p in points {
        let m = mark(&p.type_name);
        if let Some((_, failed, compensated)) = open.as_mut() {
            *failed |= m == Mark::Failure;
            *compensated |= m == Mark::Compensation;
        }
        let Some(task) = p.task_state.as_deref() else {
            continue;
        };
        if open.as_ref().is_some_and(|(s, _, _)| s.name == task) {
            continue;
        }
        if let Some((mut s, failed, compensated)) = open.take() {
            s.end_ms = Some(p.at_ms);
            s.outcome = outcome(failed, compensated);
            out.push(s);
        }
        if task != "-" {
            open = Some((
                Step {
                    name: task.to_owned(),
                    request_id: p.request_id.clone(),
                    start_ms: p.at_ms,
                    end_ms: None,
                    outcome: Outcome::Running,
                },
                false,
                false,
            ));
        }
    }
    if let Some((mut s, failed, compensated)) = open {
        if failed || compensated {
            s.outcome = outcome(failed, compensated);
        }
        out.push(s);
    }
    out
}

fn outcome(failed: bool, compensated: bool) -> Outcome {
    if compensated {
        Outcome::Compensated
    } else if failed {
        Outcome::Failed
    } else {
        Outcome::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(at_ms: i64, type_name: &str, req: &str, task: Option<&str>) -> Point {
        Point {
            at_ms,
            type_name: type_name.into(),
            request_id: req.into(),
            task_state: task.map(str::to_owned),
        }
    }

    #[test]
    fn a_build_then_a_stop_are_steps_with_their_durations() {
        let points = [
            p(0, "ServerCreateRequested", "req-1", None),
            p(5, "InstanceCreated", "req-1", Some("scheduling")),
            p(7, "SelectHostsRequested", "req-1", None),
            p(20, "InstanceScheduled", "req-1", Some("spawning")),
            p(25, "SpawnInstance", "req-1", None),
            p(90, "InstanceBecameActive", "req-1", Some("-")),
            p(200, "ServerActionRequested", "req-2", None),
            p(205, "InstanceTaskStarted", "req-2", Some("powering-off")),
            p(260, "InstanceTaskCompleted", "req-2", Some("-")),
        ];
        let s = steps(&points);
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["scheduling", "spawning", "powering-off"]);
        assert_eq!(s[0].duration_ms(0), 15);
        assert_eq!(s[1].duration_ms(0), 70);
        assert_eq!(
            (s[2].request_id.as_str(), s[2].duration_ms(0)),
            ("req-2", 55)
        );
        assert!(s.iter().all(|s| s.outcome == Outcome::Done));
    }

    #[test]
    fn a_failed_spawn_retried_elsewhere_is_compensated_and_a_failed_task_failed() {
        let points = [
            p(0, "InstanceCreated", "req-1", Some("scheduling")),
            p(10, "InstanceScheduled", "req-1", Some("spawning")),
            p(20, "SpawnFailed", "req-1", None),
            p(21, "InstanceRescheduled", "req-1", Some("scheduling")),
            p(30, "InstanceScheduled", "req-1", Some("spawning")),
            p(40, "InstanceBecameActive", "req-1", Some("-")),
            p(50, "InstanceTaskStarted", "req-2", Some("rebooting")),
            p(60, "ServerActionFailed", "req-2", None),
            p(61, "InstanceTaskFailed", "req-2", Some("-")),
        ];
        let s = steps(&points);
        let got: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.outcome)).collect();
        assert_eq!(
            got,
            [
                ("scheduling", Outcome::Done),
                // The failure and the reschedule both fall in the first
                // spawn, which the reschedule ends.
                ("spawning", Outcome::Compensated),
                ("scheduling", Outcome::Done),
                ("spawning", Outcome::Done),
                ("rebooting", Outcome::Failed),
            ]
        );
    }

    #[test]
    fn a_task_still_running_has_no_end() {
        let s = steps(&[p(100, "InstanceTaskStarted", "req-3", Some("pausing"))]);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].end_ms, s[0].outcome), (None, Outcome::Running));
        assert_eq!(s[0].duration_ms(150), 50);
    }

    #[test]
    fn marks_by_type() {
        assert_eq!(mark("SpawnFailed"), Mark::Failure);
        assert_eq!(mark("SagaStepTimedOut"), Mark::Failure);
        assert_eq!(mark("NoValidHostFound"), Mark::Failure);
        assert_eq!(mark("IntentRejected"), Mark::Failure);
        assert_eq!(mark("InstanceRescheduled"), Mark::Compensation);
        assert_eq!(mark("MigrationAborted"), Mark::Compensation);
        assert_eq!(mark("InstanceSpawned"), Mark::Normal);
    }
}
