//! Closed periods and their rated summaries, published on the `billing`
//! topic.
//!
//! # When a period is closed
//! By the log's time, per partition of `instances`: period `[s, e)` of
//! partition `p` is closed by the first record of `p` stamped at or after
//! `e + close_delay` (any record of the partition: a verdict too). Its
//! summaries are rated from the records of `p` before that one. A project's
//! records all travel on one partition (the topic is keyed by project), so
//! each summary depends on one partition's order only: a replay, a
//! redelivery or a restart, whatever its batches, closes the period at the
//! same record, from the same records, and publishes the same bytes under
//! the same event id. A partition with no records does not close its
//! periods until its next record; a record stamped before a period it
//! changes was closed (beyond the delay) changes the ledger and the
//! rating API, not the summary already published.
//!
//! Nothing here does I/O: [`PartitionPeriods`] is advanced by the service's
//! handler, which emits what it returns through its outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use novalog_schemas::billing::{BillingEvent, RatedLine, UsageRated};
use novalog_schemas::{Actor, Envelope, Event, Meta};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::meter::{Interval, ServerMeter};
use crate::period::Period;
use crate::rate::{Bill, PriceTable, bill};

/// When periods close: their length and the delay after their end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    pub period_ms: i64,
    pub delay_ms: i64,
}

/// What one partition's periods need: the first period not yet closed and
/// the usage it (or a later one) may still bill.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionPeriods {
    /// End of the first period not closed yet; `None` before the
    /// partition's first record (nothing before it can bill).
    pub next_end_ms: Option<i64>,
    /// Projects whose servers this partition carries, sorted (the order
    /// summaries are emitted in).
    pub projects: BTreeSet<String>,
    /// Servers with an open interval.
    pub open: BTreeSet<Uuid>,
    /// Closed intervals ending after the first period not closed yet
    /// began (shared with the ledger, not copied).
    pub closed: Vec<Arc<Interval>>,
}

/// The stored part of a partition's periods (the rest is read back from
/// the usage and meters tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextEnd(pub i64);

impl PartitionPeriods {
    /// The periods a record stamped `at` closes, oldest first, advancing
    /// past them. A first record opens the period it falls in. Their bills
    /// are rated next ([`PartitionPeriods::bills`]), then
    /// [`PartitionPeriods::forget_billed`] drops what only they billed.
    pub fn advance(&mut self, at: i64, c: Closing) -> Vec<Period> {
        let Some(mut end) = self.next_end_ms else {
            self.next_end_ms = Some(Period::containing(at, c.period_ms).end_ms);
            return Vec::new();
        };
        let mut due = Vec::new();
        while at >= end.saturating_add(c.delay_ms) {
            if self.open.is_empty()
                && self
                    .closed
                    .iter()
                    .all(|i| i.end_ms <= Some(end - c.period_ms))
            {
                // Nothing left to bill: skip the empty periods at once.
                end = Period::containing(at - c.delay_ms, c.period_ms).end_ms;
                break;
            }
            due.push(Period {
                start_ms: end - c.period_ms,
                end_ms: end,
            });
            end += c.period_ms;
        }
        self.next_end_ms = Some(end);
        due
    }

    /// Drops the closed intervals that end before the first period not
    /// closed yet begins.
    pub fn forget_billed(&mut self, c: Closing) {
        if let Some(start) = self.next_end_ms.map(|e| e - c.period_ms) {
            self.closed.retain(|i| i.end_ms.is_some_and(|e| e > start));
        }
    }

    /// Each project's bill over `period` (closed: its open intervals run
    /// through its end), in project order; projects with no time in it
    /// are left out.
    pub fn bills(
        &self,
        period: Period,
        meters: &crate::fasthash::FastMap<Uuid, ServerMeter>,
        table: &PriceTable,
    ) -> Vec<Bill> {
        let mut by_project: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
        let open = self
            .open
            .iter()
            .filter_map(|id| meters.get(id).and_then(|m| m.open.as_ref()));
        for i in self.closed.iter().map(|i| &**i).chain(open) {
            if i.overlap_ms(period.start_ms, period.end_ms, period.end_ms) > 0 {
                by_project.entry(&i.project_id).or_default().push(i);
            }
        }
        by_project
            .into_iter()
            .map(|(project, intervals)| bill(table, project, intervals, period, period.end_ms))
            .filter(|b| !b.lines.is_empty())
            .collect()
    }
}

/// The id of `project`'s summary of `period`: the same in every replay.
pub fn summary_id(project: &str, period: Period) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!(
            "novalog-billing/{project}/{}/{}",
            period.start_ms, period.end_ms
        )
        .as_bytes(),
    )
}

/// A bill as its `UsageRated` record.
pub fn usage_rated(b: &Bill, table: &PriceTable) -> UsageRated {
    let minor = |a| i64::try_from(table.round(a).minor).unwrap_or(i64::MAX);
    UsageRated {
        project_id: b.project_id.clone(),
        period_start_ms: b.period.start_ms,
        period_end_ms: b.period.end_ms,
        currency: b.currency.clone(),
        decimals: table.decimals,
        rounding: table.rounding.as_str().to_owned(),
        total_exact: b.total.0,
        total_minor: minor(b.total),
        lines: b
            .lines
            .iter()
            .map(|l| RatedLine {
                server_id: l.key.server_id,
                server_name: l.server_name.clone(),
                user_id: l.user_id.clone(),
                flavor_id: l.key.flavor.id.clone(),
                flavor_name: l.key.flavor.name.clone(),
                vcpus: l.key.flavor.vcpus,
                ram_mb: l.key.flavor.ram_mb,
                disk_gb: l.key.flavor.disk_gb,
                ephemeral_gb: l.key.flavor.ephemeral_gb,
                state: l.key.state.as_str().to_owned(),
                ms: l.ms,
                priced_by: l.priced_by.as_str().to_owned(),
                amount_exact: l.amount.0,
                amount_minor: minor(l.amount),
            })
            .collect(),
    }
}

/// The summary record of `b`, caused by the record that closed its period.
/// Stamped with the period's end, not the clock: a replay writes the same
/// bytes.
pub fn summary_envelope(b: &Bill, table: &PriceTable, closed_by: Uuid) -> Envelope {
    Envelope {
        meta: Meta {
            event_id: summary_id(&b.project_id, b.period),
            schema_version: novalog_schemas::envelope::SCHEMA_VERSION,
            occurred_at_ms: b.period.end_ms,
            correlation_id: String::new(),
            causation_id: Some(closed_by),
            actor: Actor::service(crate::service::NAME),
            aggregate_id: b.project_id.clone(),
            aggregate_version: 0,
        },
        event: Event::Billing(BillingEvent::UsageRated(Box::new(usage_rated(b, table)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::{BillableState, FlavorSpec};

    const H: i64 = 3_600_000;
    const C: Closing = Closing {
        period_ms: H,
        delay_ms: 60_000,
    };

    fn interval(start_ms: i64, end_ms: Option<i64>) -> Interval {
        Interval {
            server_id: Uuid::from_u128(1),
            server_name: "vm".into(),
            project_id: "demo".into(),
            user_id: "alice".into(),
            flavor: FlavorSpec {
                id: "1".into(),
                name: "m1.tiny".into(),
                vcpus: 1,
                ram_mb: 512,
                disk_gb: 1,
                ephemeral_gb: 0,
            },
            host: None,
            state: BillableState::Running,
            start_ms,
            end_ms,
        }
    }

    fn period(start_ms: i64) -> Period {
        Period {
            start_ms,
            end_ms: start_ms + H,
        }
    }

    #[test]
    fn a_period_closes_at_the_first_record_stamped_its_delay_after_its_end() {
        let mut p = PartitionPeriods::default();
        assert!(
            p.advance(10 * H + 5, C).is_empty(),
            "the first record opens"
        );
        assert_eq!(p.next_end_ms, Some(11 * H));
        p.open.insert(Uuid::from_u128(1));
        assert!(p.advance(11 * H + 59_999, C).is_empty(), "within the delay");
        assert!(p.advance(11 * H - 7, C).is_empty(), "an earlier stamp");
        assert_eq!(p.advance(11 * H + 60_000, C), vec![period(10 * H)]);
        // A running server bills every hour, so a gap closes each of them.
        assert_eq!(
            p.advance(14 * H + 60_000, C),
            vec![period(11 * H), period(12 * H), period(13 * H)]
        );
        assert_eq!(p.next_end_ms, Some(15 * H));
    }

    #[test]
    fn periods_nothing_bills_are_skipped_and_done_intervals_dropped() {
        let mut p = PartitionPeriods {
            next_end_ms: Some(H),
            ..Default::default()
        };
        p.closed.push(Arc::new(interval(0, Some(H / 2))));
        p.closed.push(Arc::new(interval(H / 2, Some(H + 1))));
        assert_eq!(
            p.advance(100 * H, C),
            vec![period(0), period(H)],
            "the second interval bills into the second period"
        );
        assert_eq!(p.closed.len(), 2, "kept until the periods are billed");
        p.forget_billed(C);
        assert!(p.closed.is_empty());
        assert_eq!(p.next_end_ms, Some(100 * H), "99h+60s is not closed yet");
    }

    #[test]
    fn bills_split_at_period_ends_and_add_up() {
        let table = PriceTable::from_options(&Default::default()).unwrap();
        let mut meters = crate::fasthash::FastMap::default();
        let running = ServerMeter {
            open: Some(Interval {
                server_id: Uuid::from_u128(2),
                ..interval(H / 3, None)
            }),
            ..Default::default()
        };
        meters.insert(Uuid::from_u128(2), running);
        let p = PartitionPeriods {
            next_end_ms: Some(H),
            open: BTreeSet::from([Uuid::from_u128(2)]),
            closed: vec![Arc::new(interval(0, Some(H + H / 4)))],
            ..Default::default()
        };
        let first = p.bills(period(0), &meters, &table);
        let second = p.bills(period(H), &meters, &table);
        assert_eq!((first.len(), second.len()), (1, 1));
        let ms = |b: &Bill| b.lines.iter().map(|l| l.ms).collect::<Vec<_>>();
        assert_eq!(ms(&first[0]), [H, H - H / 3]);
        assert_eq!(ms(&second[0]), [H / 4, H]);
        let whole = bill(
            &table,
            "demo",
            p.closed
                .iter()
                .map(|i| &**i)
                .chain(meters[&Uuid::from_u128(2)].open.as_ref()),
            Period {
                start_ms: 0,
                end_ms: 2 * H,
            },
            2 * H,
        );
        assert_eq!(first[0].total + second[0].total, whole.total);
        let rated = usage_rated(&first[0], &table);
        assert_eq!(rated.total_exact, first[0].total.0);
        assert_eq!(rated.lines.len(), 2);
        let env = summary_envelope(&first[0], &table, Uuid::from_u128(7));
        assert_eq!(env.meta.occurred_at_ms, H, "stamped with the period's end");
        assert_eq!(env.meta.event_id, summary_id("demo", period(0)));
        let back = novalog_schemas::decode_on(
            novalog_schemas::Topic::Billing,
            &novalog_schemas::encode(&env),
        );
        assert_eq!(back, Ok(env), "what is published decodes");
    }
}
