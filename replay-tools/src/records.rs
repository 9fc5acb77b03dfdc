//! A decoded record and the forms it is shown in.

use novalog_log::Consumed;
use novalog_schemas::Envelope;
use serde_json::{Value, json};

use crate::format_time;

/// Where a record is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

impl Position {
    pub fn of(c: &Consumed) -> Self {
        Position {
            topic: c.topic.clone(),
            partition: c.partition,
            offset: c.offset,
        }
    }

    /// Parses `topic/partition/offset`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.rsplitn(3, '/');
        let offset = it.next()?.parse().ok()?;
        let partition = it.next()?.parse().ok()?;
        let topic = it.next()?.to_owned();
        Some(Position {
            topic,
            partition,
            offset,
        })
    }
}

pub use novalog_history::StateAfter;

/// The JSON form of a record (`export --format jsonl`, `history --json`).
pub fn to_json(c: &Consumed, env: &Envelope, state: Option<&StateAfter>) -> Value {
    let mut v = json!({
        "topic": c.topic,
        "partition": c.partition,
        "offset": c.offset,
        "appended_at": format_time(c.timestamp_ms),
        "occurred_at": format_time(env.meta.occurred_at_ms),
        "type": env.event.type_name(),
        "event_id": env.meta.event_id,
        "correlation_id": env.meta.correlation_id,
        "causation_id": env.meta.causation_id,
        "actor": env.meta.actor,
        "aggregate_id": env.meta.aggregate_id,
        "aggregate_version": env.meta.aggregate_version,
        "event": serde_json::to_value(&env.event).unwrap_or(Value::Null),
    });
    if let Some(s) = state {
        v["vm_state"] = json!(s.vm_state);
        v["task_state"] = json!(s.task_state);
        v["power_state"] = json!(s.power_state);
        v["host"] = json!(s.host);
    }
    v
}

/// CSV header of [`to_csv`].
pub const CSV_HEADER: &str = "topic,partition,offset,appended_at,occurred_at,type,event_id,correlation_id,causation_id,user_id,project_id,roles,aggregate_id,aggregate_version,event";

/// One CSV row (RFC 4180 quoting); the payload as a JSON cell.
pub fn to_csv(c: &Consumed, env: &Envelope) -> String {
    let m = &env.meta;
    let cells = [
        c.topic.clone(),
        c.partition.to_string(),
        c.offset.to_string(),
        format_time(c.timestamp_ms),
        format_time(m.occurred_at_ms),
        env.event.type_name().to_owned(),
        m.event_id.to_string(),
        m.correlation_id.clone(),
        m.causation_id.map(|c| c.to_string()).unwrap_or_default(),
        m.actor.user_id.clone(),
        m.actor.project_id.clone(),
        m.actor.roles.join(" "),
        m.aggregate_id.clone(),
        m.aggregate_version.to_string(),
        serde_json::to_string(&env.event).unwrap_or_default(),
    ];
    cells
        .iter()
        .map(|s| csv_cell(s))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The one-line human form: time, actor, type, state after, request id.
pub fn to_line(
    c: &Consumed,
    env: &Envelope,
    state: Option<&StateAfter>,
    namespace: &str,
) -> String {
    let m = &env.meta;
    let topic = c.topic.strip_prefix(namespace).unwrap_or(&c.topic);
    let actor = format!(
        "{}/{}[{}]",
        m.actor.user_id,
        m.actor.project_id,
        m.actor.roles.join(",")
    );
    let state = state
        .map(|s| {
            format!(
                "{:<9} {:<18} {:<8} {}",
                s.vm_state, s.task_state, s.power_state, s.host
            )
        })
        .unwrap_or_else(|| format!("{:<9} {:<18} {:<8} {}", "", "", "", ""));
    format!(
        "{}  {:<20} {:<30} {:<32} {}  {}",
        format_time(m.occurred_at_ms),
        format!("{topic}/{}/{}", c.partition, c.offset),
        env.event.type_name(),
        actor,
        state.trim_end(),
        m.correlation_id
    )
}

/// Header of [`to_line`] rows.
pub fn line_header() -> String {
    format!(
        "{:<24}  {:<20} {:<30} {:<32} {:<9} {:<18} {:<8} {}  {}",
        "TIME", "RECORD", "TYPE", "ACTOR", "VM_STATE", "TASK_STATE", "POWER", "HOST", "REQUEST"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_round_trips_with_dots_and_slashes_in_topic() {
        let p = Position::parse("novalog.instances/3/42").unwrap();
        assert_eq!(p.topic, "novalog.instances");
        assert_eq!((p.partition, p.offset), (3, 42));
        assert_eq!(p.to_string(), "novalog.instances/3/42");
        assert!(Position::parse("instances/x/1").is_none());
        assert!(Position::parse("instances").is_none());
    }

    #[test]
    fn csv_cells_are_quoted_only_when_needed() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
