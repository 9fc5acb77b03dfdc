//! `history <server-id | request-id | project-id>`: every record that
//! concerns it, across topics, in log order.

use std::collections::HashMap;
use std::io::Write;

use novalog_log::Consumed;
use novalog_schemas::instance::evolve;
use novalog_schemas::{Envelope, Instance};
use uuid::Uuid;

use crate::records::{self, StateAfter};
use crate::{Error, Progress, Result, Source};

/// One line of a history.
#[derive(Debug, Clone)]
pub struct Entry {
    pub record: Consumed,
    pub env: Envelope,
    /// The instance's state after the record, for records of `instances`.
    pub state: Option<StateAfter>,
}

/// What a history is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Server(Uuid),
    Request(String),
    Project(String),
}

impl Subject {
    pub fn parse(s: &str) -> Self {
        if s.starts_with("req-") {
            Subject::Request(s.to_owned())
        } else if let Ok(id) = Uuid::parse_str(s) {
            Subject::Server(id)
        } else {
            Subject::Project(s.to_owned())
        }
    }
}

/// Every record about `subject`, in log order, causes before effects.
pub async fn entries(
    src: &Source,
    subject: &Subject,
    progress: &dyn Progress,
) -> Result<Vec<Entry>> {
    let topics = src.existing_topics().await;
    let all = src.read_all(&topics, progress).await?;
    let instances_topic = src.topics().instances.clone();
    let mut folded: HashMap<String, Instance> = HashMap::new();
    let mut out = Vec::new();
    let needle = match subject {
        Subject::Server(id) => id.to_string(),
        Subject::Request(s) | Subject::Project(s) => s.clone(),
    };
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
    if out.is_empty() {
        return Err(Error::BadInput(format!("no record concerns {needle}")));
    }
    order_causally(&mut out);
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

/// Prints a history as a table, or JSON lines.
pub fn print(entries: &[Entry], json: bool, namespace: &str, out: &mut dyn Write) -> Result<()> {
    if !json {
        writeln!(out, "{}", records::line_header())?;
    }
    for e in entries {
        if json {
            let v = records::to_json(&e.record, &e.env, e.state.as_ref());
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{}",
                records::to_line(&e.record, &e.env, e.state.as_ref(), namespace)
            )?;
        }
    }
    Ok(())
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
    }
}
