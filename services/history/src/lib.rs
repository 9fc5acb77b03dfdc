//! `novalog-history`: what the log says about one server, one request or
//! one project, computed from records already read. Pure: the caller
//! reads the log (`novalog-replay history` from a log directory or a
//! broker, the API's web console from the log it runs on) and hands the
//! records over; both show the same history because both call
//! [`select`].
//!
//! # Layout
//! - here: [`Subject`], [`Entry`], [`StateAfter`] and [`select`] (which
//!   records concern a subject, the instance's state after each, in
//!   causal order);
//! - [`timeline`]: a history as steps with their durations (the task
//!   states a server went through) and each record's [`timeline::Mark`]
//!   (a failure, a compensation).

pub mod timeline;

use std::collections::HashMap;

use novalog_log::{Consumed, EventLog};
use novalog_schemas::instance::evolve;
use novalog_schemas::{Envelope, Instance};
use uuid::Uuid;

/// What a history is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Server(Uuid),
    Request(String),
    Project(String),
}

impl Subject {
    /// A request id starts with `req-`, a server id is a uuid, anything
    /// else is a project id.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("req-") {
            Subject::Request(s.to_owned())
        } else if let Ok(id) = Uuid::parse_str(s) {
            Subject::Server(id)
        } else {
            Subject::Project(s.to_owned())
        }
    }

    /// The id as it is searched for.
    pub fn needle(&self) -> String {
        match self {
            Subject::Server(id) => id.to_string(),
            Subject::Request(s) | Subject::Project(s) => s.clone(),
        }
    }
}

/// The state axes of an instance after a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateAfter {
    pub vm_state: String,
    /// `-` when no task runs.
    pub task_state: String,
    pub power_state: String,
    /// `-` before the instance has a host.
    pub host: String,
}

impl StateAfter {
    pub fn of(i: &Instance) -> Self {
        StateAfter {
            vm_state: i.vm_state.as_str().to_owned(),
            task_state: i
                .task_state
                .map(|t| t.as_str().to_owned())
                .unwrap_or_else(|| "-".into()),
            power_state: format!("{:?}", i.power_state).to_lowercase(),
            host: i.host.clone().unwrap_or_else(|| "-".into()),
        }
    }
}

/// One record of a history.
#[derive(Debug, Clone)]
pub struct Entry {
    pub record: Consumed,
    pub env: Envelope,
    /// The instance's state after the record, for records of `instances`.
    pub state: Option<StateAfter>,
}

/// The records of `all` (every topic, in log order) that concern
/// `subject`, causes before effects within one millisecond. Records of
/// `instances_topic` are folded with the instance aggregate's own
/// `evolve`, so each carries the state it left the instance in.
/// Undecodable records are skipped (they are dead letters' business).
pub fn select(all: Vec<Consumed>, subject: &Subject, instances_topic: &str) -> Vec<Entry> {
    let mut folded: HashMap<String, Instance> = HashMap::new();
    let mut out = Vec::new();
    let needle = subject.needle();
    for record in all {
        let Ok(env) = novalog_schemas::decode(&record.value) else {
            continue;
        };
        let state = if record.topic == instances_topic {
            let prev = folded.remove(&env.meta.aggregate_id);
            let next = evolve(prev, &env);
            let s = next.as_ref().map(StateAfter::of);
            if let Some(n) = next {
                folded.insert(env.meta.aggregate_id.clone(), n);
            }
            s
        } else {
            None
        };
        let m = &env.meta;
        let hit = match subject {
            Subject::Request(r) => &m.correlation_id == r,
            // Keystone's ids are uuids written without hyphens (a
            // project, a user, a role): either spelling finds them.
            Subject::Server(id) => {
                let simple = id.simple().to_string();
                m.aggregate_id == needle
                    || m.aggregate_id == simple
                    || serde_json::to_string(&env.event)
                        .is_ok_and(|j| j.contains(&needle) || j.contains(&simple))
            }
            Subject::Project(p) => {
                &m.actor.project_id == p
                    || record.key == p.as_bytes()
                    || folded
                        .get(&m.aggregate_id)
                        .is_some_and(|i| &i.project_id == p)
            }
        };
        if hit {
            out.push(Entry { record, env, state });
        }
    }
    order_causally(&mut out);
    out
}

/// Records read from several topics in log order: by append time, then
/// topic (in the order of `topics`), partition and offset (the order a
/// reader of all of them would have seen, to the millisecond).
pub fn log_order(records: &mut [Consumed], topics: &[String]) {
    let rank = |t: &str| topics.iter().position(|x| x == t).unwrap_or(usize::MAX);
    records.sort_by_key(|c| (c.timestamp_ms, rank(&c.topic), c.partition, c.offset));
}

/// Records read per request.
const READ_CHUNK: usize = 1_000;

/// Every record of those of `topics` that exist in `log`, in log order
/// ([`log_order`]): what [`select`] takes. The whole log is read, so the
/// time it takes grows with the log.
pub async fn read_all(
    log: &dyn EventLog,
    topics: &[String],
) -> Result<Vec<Consumed>, novalog_log::Error> {
    let mut out = Vec::new();
    for topic in topics {
        // A topic nothing was written to yet may not exist.
        let Ok(ends) = log.end_offsets(topic).await else {
            continue;
        };
        for (partition, end) in ends.into_iter().enumerate() {
            let mut next = 0;
            while next < end {
                let want = ((end - next) as usize).min(READ_CHUNK);
                let chunk = log.read(topic, partition as i32, next, want).await?;
                let Some(last) = chunk.last() else { break };
                next = last.offset + 1;
                out.extend(chunk.into_iter().filter(|c| c.offset < end));
            }
        }
    }
    log_order(&mut out, topics);
    Ok(out)
}

/// Orders by append time, and within one millisecond a cause before what
/// it caused (its depth in the causation chain).
fn order_causally(entries: &mut [Entry]) {
    let by_id: HashMap<Uuid, Option<Uuid>> = entries
        .iter()
        .map(|e| (e.env.meta.event_id, e.env.meta.causation_id))
        .collect();
    let depth = |mut id: Uuid| {
        let mut d = 0u32;
        while let Some(Some(cause)) = by_id.get(&id) {
            d += 1;
            id = *cause;
            if d > 1_000 {
                break;
            }
        }
        d
    };
    let depths: HashMap<Uuid, u32> = by_id.keys().map(|id| (*id, depth(*id))).collect();
    entries.sort_by_key(|e| (e.record.timestamp_ms, depths[&e.env.meta.event_id]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_told_apart_by_shape() {
        assert_eq!(
            Subject::parse("req-0b4c"),
            Subject::Request("req-0b4c".into())
        );
        let id = Uuid::new_v4();
        assert_eq!(Subject::parse(&id.to_string()), Subject::Server(id));
        assert_eq!(Subject::parse("demo"), Subject::Project("demo".into()));
        assert_eq!(Subject::Server(id).needle(), id.to_string());
    }
}
