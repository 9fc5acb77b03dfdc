//! Topic `billing`: each closed period's rated usage of a project, as
//! `novalog-billing` publishes it for downstream systems (invoicing,
//! dashboards). Keyed by project id.
//!
//! The wire is untrusted like every other topic's: a summary whose lines do
//! not add up to its total, whose period runs backwards, or whose amounts
//! are not integers does not decode (readers dead-letter it).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::DecodeError;
use crate::events::Event;
use crate::pb;

/// Names of the billable states a line may be in (`novalog-billing`'s
/// `BillableState`).
pub const BILLABLE_STATES: [&str; 8] = [
    "running",
    "paused",
    "suspended",
    "stopped",
    "shelved",
    "building",
    "error",
    "deleted",
];

/// How a line's hourly rate was found.
pub const PRICED_BY: [&str; 2] = ["flavor", "resources"];

/// Rounding rules a summary may name.
pub const ROUNDINGS: [&str; 4] = ["half_even", "half_up", "up", "down"];

/// Records of topic `billing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BillingEvent {
    UsageRated(Box<UsageRated>),
}

impl BillingEvent {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            BillingEvent::UsageRated(_) => "UsageRated",
        }
    }
}

impl From<BillingEvent> for Event {
    fn from(e: BillingEvent) -> Self {
        Event::Billing(e)
    }
}

/// One project's usage over the closed period `[period_start_ms,
/// period_end_ms)`, rated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRated {
    pub project_id: String,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    pub currency: String,
    /// Places of the rounded amounts.
    pub decimals: u32,
    pub rounding: String,
    /// The exact sum of the lines' exact amounts, in units of
    /// 1/(10^12 × 3,600,000 × 1024) of the currency.
    pub total_exact: i128,
    /// `total_exact` rounded (rounded once, not the sum of the rounded
    /// lines).
    pub total_minor: i64,
    pub lines: Vec<RatedLine>,
}

/// One server at one flavor in one billable state within the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatedLine {
    pub server_id: Uuid,
    pub server_name: String,
    pub user_id: String,
    pub flavor_id: String,
    pub flavor_name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
    pub ephemeral_gb: u64,
    /// One of [`BILLABLE_STATES`].
    pub state: String,
    /// Milliseconds in the period.
    pub ms: i64,
    /// One of [`PRICED_BY`].
    pub priced_by: String,
    pub amount_exact: i128,
    pub amount_minor: i64,
}

type R<T> = Result<T, DecodeError>;

fn invalid(field: &'static str, message: impl ToString) -> DecodeError {
    DecodeError::Invalid {
        field,
        message: message.to_string(),
    }
}

fn exact(field: &'static str, s: &str) -> R<i128> {
    // Digits with an optional sign only: `+1`, ` 1` and `1e3` are refused.
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, format!("{s:?} is not an integer")));
    }
    s.parse()
        .map_err(|_| invalid(field, format!("{s:?} is out of range")))
}

fn one_of(field: &'static str, s: String, allowed: &[&str]) -> R<String> {
    if allowed.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(invalid(field, format!("{s:?} is not one of {allowed:?}")))
    }
}

impl From<RatedLine> for pb::RatedLine {
    fn from(l: RatedLine) -> Self {
        pb::RatedLine {
            server_id: l.server_id.to_string(),
            server_name: l.server_name,
            user_id: l.user_id,
            flavor_id: l.flavor_id,
            flavor_name: l.flavor_name,
            vcpus: l.vcpus,
            ram_mb: l.ram_mb,
            disk_gb: l.disk_gb,
            ephemeral_gb: l.ephemeral_gb,
            state: l.state,
            ms: l.ms,
            priced_by: l.priced_by,
            amount_exact: l.amount_exact.to_string(),
            amount_minor: l.amount_minor,
        }
    }
}

impl TryFrom<pb::RatedLine> for RatedLine {
    type Error = DecodeError;
    fn try_from(p: pb::RatedLine) -> R<Self> {
        if p.ms < 0 {
            return Err(invalid("lines.ms", format!("{} is negative", p.ms)));
        }
        if p.flavor_id.is_empty() {
            return Err(DecodeError::Missing("lines.flavor_id"));
        }
        Ok(RatedLine {
            server_id: Uuid::parse_str(&p.server_id).map_err(|e| invalid("lines.server_id", e))?,
            server_name: p.server_name,
            user_id: p.user_id,
            flavor_id: p.flavor_id,
            flavor_name: p.flavor_name,
            vcpus: p.vcpus,
            ram_mb: p.ram_mb,
            disk_gb: p.disk_gb,
            ephemeral_gb: p.ephemeral_gb,
            state: one_of("lines.state", p.state, &BILLABLE_STATES)?,
            ms: p.ms,
            priced_by: one_of("lines.priced_by", p.priced_by, &PRICED_BY)?,
            amount_exact: exact("lines.amount_exact", &p.amount_exact)?,
            amount_minor: p.amount_minor,
        })
    }
}

impl From<UsageRated> for pb::UsageRated {
    fn from(u: UsageRated) -> Self {
        pb::UsageRated {
            project_id: u.project_id,
            period_start_ms: u.period_start_ms,
            period_end_ms: u.period_end_ms,
            currency: u.currency,
            decimals: u.decimals,
            rounding: u.rounding,
            total_exact: u.total_exact.to_string(),
            total_minor: u.total_minor,
            lines: u.lines.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::UsageRated> for UsageRated {
    type Error = DecodeError;
    fn try_from(p: pb::UsageRated) -> R<Self> {
        if p.project_id.is_empty() {
            return Err(DecodeError::Missing("project_id"));
        }
        if p.currency.is_empty() {
            return Err(DecodeError::Missing("currency"));
        }
        if p.period_end_ms <= p.period_start_ms {
            return Err(invalid(
                "period_end_ms",
                format!(
                    "{} is not after period_start_ms {}",
                    p.period_end_ms, p.period_start_ms
                ),
            ));
        }
        if p.decimals > 6 {
            return Err(invalid(
                "decimals",
                format!("{} is more than 6", p.decimals),
            ));
        }
        let period = p.period_end_ms - p.period_start_ms;
        let lines = p
            .lines
            .into_iter()
            .map(RatedLine::try_from)
            .collect::<R<Vec<_>>>()?;
        if let Some(l) = lines.iter().find(|l| l.ms > period) {
            return Err(invalid(
                "lines.ms",
                format!("{} is longer than the period ({period} ms)", l.ms),
            ));
        }
        let total_exact = exact("total_exact", &p.total_exact)?;
        let sum = lines
            .iter()
            .try_fold(0i128, |a, l| a.checked_add(l.amount_exact));
        if sum != Some(total_exact) {
            return Err(invalid(
                "total_exact",
                format!("{total_exact} is not the sum of the lines"),
            ));
        }
        Ok(UsageRated {
            project_id: p.project_id,
            period_start_ms: p.period_start_ms,
            period_end_ms: p.period_end_ms,
            currency: p.currency,
            decimals: p.decimals,
            rounding: one_of("rounding", p.rounding, &ROUNDINGS)?,
            total_exact,
            total_minor: p.total_minor,
            lines,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use prost::Message;

    use super::*;
    use crate::{Actor, Envelope, Meta, Topic, decode_on, encode};

    pub(crate) fn sample() -> UsageRated {
        let line = |n: u128, amount: i128| RatedLine {
            server_id: Uuid::from_u128(n),
            server_name: format!("vm{n}"),
            user_id: "alice".into(),
            flavor_id: "1".into(),
            flavor_name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            ephemeral_gb: 0,
            state: "running".into(),
            ms: 1_800_000,
            priced_by: "resources".into(),
            amount_exact: amount,
            amount_minor: 1,
        };
        UsageRated {
            project_id: "demo".into(),
            period_start_ms: 3_600_000,
            period_end_ms: 7_200_000,
            currency: "USD".into(),
            decimals: 2,
            rounding: "half_even".into(),
            // Larger than an i64: the exact unit is tiny.
            total_exact: 30_000_000_000_000_000_000_000 + 7,
            total_minor: 2,
            lines: vec![
                line(1, 10_000_000_000_000_000_000_000),
                line(2, 20_000_000_000_000_000_000_000 + 7),
            ],
        }
    }

    fn envelope(u: UsageRated) -> Envelope {
        Envelope {
            meta: Meta::origin(
                Uuid::from_u128(9),
                String::new(),
                Actor::service("billing"),
                "demo".into(),
            ),
            event: BillingEvent::UsageRated(Box::new(u)).into(),
        }
    }

    #[test]
    fn a_summary_travels_on_the_billing_topic_only() {
        let env = envelope(sample());
        let bytes = encode(&env);
        assert_eq!(decode_on(Topic::Billing, &bytes), Ok(env));
        assert!(matches!(
            decode_on(Topic::Instance, &bytes),
            Err(DecodeError::WrongTopic { .. })
        ));
        assert_eq!(Topic::of_name("novalog.billing"), Some(Topic::Billing));
    }

    /// What a reader could not bill from does not decode.
    #[test]
    fn a_summary_that_does_not_hold_together_does_not_decode() {
        let wire = pb::UsageRated::from(sample());
        let decoded = |f: &dyn Fn(&mut pb::UsageRated)| {
            let mut w = wire.clone();
            f(&mut w);
            UsageRated::try_from(pb::UsageRated::decode(&w.encode_to_vec()[..]).unwrap())
        };
        assert_eq!(decoded(&|_| {}), Ok(sample()));
        let field = |r: R<UsageRated>| match r {
            Err(DecodeError::Invalid { field, .. }) => field,
            Err(DecodeError::Missing(field)) => field,
            other => panic!("decoded: {other:?}"),
        };
        assert_eq!(field(decoded(&|w| w.project_id.clear())), "project_id");
        assert_eq!(field(decoded(&|w| w.currency.clear())), "currency");
        assert_eq!(
            field(decoded(&|w| w.period_end_ms = w.period_start_ms)),
            "period_end_ms"
        );
        assert_eq!(field(decoded(&|w| w.decimals = 7)), "decimals");
        assert_eq!(
            field(decoded(&|w| w.rounding = "nearest".into())),
            "rounding"
        );
        for bad in [
            "",
            "1.5",
            "1e3",
            "+1",
            " 1",
            "99999999999999999999999999999999999999999",
        ] {
            assert_eq!(
                field(decoded(&|w| w.total_exact = bad.into())),
                "total_exact",
                "{bad:?}"
            );
        }
        assert_eq!(
            field(decoded(
                &|w| w.total_exact = "30000000000000000000000".into()
            )),
            "total_exact",
            "not the sum of the lines"
        );
        assert_eq!(field(decoded(&|w| w.lines[0].ms = -1)), "lines.ms");
        assert_eq!(
            field(decoded(&|w| w.lines[0].ms = 3_600_001)),
            "lines.ms",
            "longer than the period"
        );
        assert_eq!(
            field(decoded(&|w| w.lines[0].server_id = "x".into())),
            "lines.server_id"
        );
        assert_eq!(
            field(decoded(&|w| w.lines[0].state = "sleeping".into())),
            "lines.state"
        );
        assert_eq!(
            field(decoded(&|w| w.lines[0].priced_by = "guess".into())),
            "lines.priced_by"
        );
        assert_eq!(
            field(decoded(&|w| w.lines[0].flavor_id.clear())),
            "lines.flavor_id"
        );
        assert_eq!(
            field(decoded(&|w| w.lines[1].amount_exact = "x".into())),
            "lines.amount_exact"
        );
    }
}
