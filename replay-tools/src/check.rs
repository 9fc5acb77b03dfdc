//! `check`: every record decodes, and the envelope and domain invariants
//! hold over the whole history.

use std::collections::HashMap;
use std::io::Write;

use novalog_schemas::quota::QuotaDefaults;
use uuid::Uuid;

use crate::invariants::{Domain, TopicKind};
use crate::records::Position;
use crate::{Progress, Result, Source};

/// One broken invariant, naming the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: Position,
    pub rule: &'static str,
    pub detail: String,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    /// Times a host's usage was held to the flavors placed (`host-usage`).
    pub usage_reports_compared: u64,
    pub violations: Vec<Violation>,
}

/// Checks every topic of `src`.
///
/// Rules:
/// - `decode`: every record decodes (records already dead-lettered count
///   too: the log keeps them).
/// - `unique-event-id`: an event id is never used for a different event
///   (re-sent copies of one event, which readers drop, are fine).
/// - `contiguous-version`: on `instances`, each instance's versions go up
///   by one (re-sent copies at or below the current version are fine).
/// - `causation`: every causation id names a record that came before.
/// - the domain rules of [`crate::invariants`] (`deleted-no-task`,
///   `host-usage`, `migration-claim-left`, `quota`), with Nova's default
///   quotas.
pub async fn check(src: &Source, progress: &dyn Progress) -> Result<Report> {
    check_with(src, &QuotaDefaults::default(), progress).await
}

/// [`check`] with the cloud's `[quota]` defaults.
pub async fn check_with(
    src: &Source,
    quota: &QuotaDefaults,
    progress: &dyn Progress,
) -> Result<Report> {
    let topics = src.existing_topics().await;
    let all = src.read_all(&topics, progress).await?;
    let instances = src.topics().instances.clone();
    let catalog = src.topics().catalog.clone();
    let mut domain = Domain::new(quota.clone());
    let mut report = Report::default();
    // event id -> (type, aggregate id, version) of its first record.
    let mut seen: HashMap<Uuid, (&'static str, String, u64)> = HashMap::with_capacity(all.len());
    let mut causes_pending: Vec<(Position, Uuid)> = Vec::new();
    // The highest version seen per instance.
    let mut versions: HashMap<String, u64> = HashMap::new();
    for rec in &all {
        report.records += 1;
        let at = Position::of(rec);
        let env = match novalog_schemas::decode(&rec.value) {
            Ok(env) => env,
            Err(e) => {
                report.violations.push(Violation {
                    at,
                    rule: "decode",
                    detail: e.to_string(),
                });
                continue;
            }
        };
        let m = &env.meta;
        let identity = (
            env.event.type_name(),
            m.aggregate_id.clone(),
            m.aggregate_version,
        );
        match seen.get(&m.event_id) {
            Some(first) if *first != identity => report.violations.push(Violation {
                at: at.clone(),
                rule: "unique-event-id",
                detail: format!(
                    "event id {} was {} of {} v{} before, now {} of {} v{}",
                    m.event_id, first.0, first.1, first.2, identity.0, identity.1, identity.2
                ),
            }),
            Some(_) => {}
            None => {
                seen.insert(m.event_id, identity);
            }
        }
        if let Some(cause) = m.causation_id
            && !seen.contains_key(&cause)
        {
            // Checked at the end: records appended in the same
            // millisecond on two topics may sort either way.
            causes_pending.push((at.clone(), cause));
        }
        if rec.topic == instances && m.aggregate_version > 0 {
            let current = versions.get(&m.aggregate_id).copied().unwrap_or(0);
            if m.aggregate_version > current + 1 {
                report.violations.push(Violation {
                    at: at.clone(),
                    rule: "contiguous-version",
                    detail: format!(
                        "instance {} jumps from version {current} to {}",
                        m.aggregate_id, m.aggregate_version
                    ),
                });
            }
            versions.insert(m.aggregate_id.clone(), current.max(m.aggregate_version));
        }
        let kind = if rec.topic == instances {
            TopicKind::Instances
        } else if rec.topic == catalog {
            TopicKind::Catalog
        } else {
            TopicKind::Other
        };
        domain.record(&at, rec.timestamp_ms, &env, kind);
    }
    for (at, cause) in causes_pending {
        if !seen.contains_key(&cause) {
            report.violations.push(Violation {
                at,
                rule: "causation",
                detail: format!("causation id {cause} names no record of the log"),
            });
        }
    }
    let found = domain.finish();
    report.violations.extend(found.violations);
    report.usage_reports_compared = found.usage_reports_compared;
    Ok(report)
}

/// Prints the report: one line per violation, then a summary.
pub fn print(report: &Report, out: &mut dyn Write) -> Result<()> {
    for v in &report.violations {
        writeln!(out, "{}  {}  {}", v.at, v.rule, v.detail)?;
    }
    writeln!(
        out,
        "{} records checked, {} host usage comparisons, {} violations",
        report.records,
        report.usage_reports_compared,
        report.violations.len()
    )?;
    Ok(())
}
