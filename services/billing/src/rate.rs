//! Rating: usage intervals priced by the `[billing]` table, exactly.

use std::collections::BTreeMap;

use novalog_runtime::config::BillingOptions;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::meter::{BillableState, FlavorSpec, Interval};
use crate::money::{Amount, MIB_PER_GIB, Micros, PriceError, Rounded, Rounding};
use crate::period::Period;

/// `[billing]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    pub currency: String,
    pub decimals: u32,
    pub rounding: Rounding,
    pub period_ms: i64,
    pub vcpu_hour: Micros,
    pub ram_gib_hour: Micros,
    pub disk_gb_hour: Micros,
    /// Hourly price by flavor name or id.
    pub flavors: BTreeMap<String, Micros>,
    /// A state missing here is not billed (multiplier 0).
    pub multipliers: BTreeMap<BillableState, Micros>,
}

/// How an interval's hourly rate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PricedBy {
    /// The flavor is in the table.
    Flavor,
    /// Not in the table: the default per-resource rates (and
    /// `check-prices` lists the flavor).
    Resources,
}

impl PricedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            PricedBy::Flavor => "flavor",
            PricedBy::Resources => "resources",
        }
    }
}

impl PriceTable {
    pub fn from_options(o: &BillingOptions) -> Result<Self, PriceError> {
        if o.decimals > 6 {
            return Err(PriceError::Decimals(o.decimals));
        }
        if o.period_seconds == 0 {
            return Err(PriceError::Period);
        }
        if o.currency.trim().is_empty() {
            return Err(PriceError::Currency);
        }
        let flavors = o
            .flavors
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    Micros::parse(&format!("billing.flavors.{k}"), v)?,
                ))
            })
            .collect::<Result<_, PriceError>>()?;
        let multipliers = o
            .state_multipliers
            .iter()
            .map(|(k, v)| {
                let state = BillableState::parse(k).ok_or_else(|| PriceError::State(k.clone()))?;
                Ok((
                    state,
                    Micros::parse(&format!("billing.state_multipliers.{k}"), v)?,
                ))
            })
            .collect::<Result<_, PriceError>>()?;
        Ok(PriceTable {
            currency: o.currency.clone(),
            decimals: o.decimals,
            rounding: Rounding::parse(&o.rounding)?,
            period_ms: i64::try_from(o.period_seconds)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .ok_or(PriceError::Period)?,
            vcpu_hour: Micros::parse("billing.vcpu_hour", &o.vcpu_hour)?,
            ram_gib_hour: Micros::parse("billing.ram_gib_hour", &o.ram_gib_hour)?,
            disk_gb_hour: Micros::parse("billing.disk_gb_hour", &o.disk_gb_hour)?,
            flavors,
            multipliers,
        })
    }

    /// The flavor's price in the table, by name first, then by id.
    pub fn flavor_price(&self, f: &FlavorSpec) -> Option<Micros> {
        self.flavors
            .get(&f.name)
            .or_else(|| self.flavors.get(&f.id))
            .copied()
    }

    /// The hourly rate of `f` in micro-units per 1024 (so that RAM priced
    /// per GiB stays an integer for flavors sized in MiB).
    pub fn hourly_micro_1024(&self, f: &FlavorSpec) -> (i128, PricedBy) {
        match self.flavor_price(f) {
            Some(p) => (i128::from(p.0) * MIB_PER_GIB, PricedBy::Flavor),
            None => {
                let disk = i128::from(f.disk_gb) + i128::from(f.ephemeral_gb);
                (
                    i128::from(f.vcpus) * i128::from(self.vcpu_hour.0) * MIB_PER_GIB
                        + i128::from(f.ram_mb) * i128::from(self.ram_gib_hour.0)
                        + disk * i128::from(self.disk_gb_hour.0) * MIB_PER_GIB,
                    PricedBy::Resources,
                )
            }
        }
    }

    pub fn multiplier(&self, s: BillableState) -> Micros {
        self.multipliers.get(&s).copied().unwrap_or(Micros::ZERO)
    }

    /// The exact charge for `ms` milliseconds of `flavor` in `state`.
    pub fn charge(&self, flavor: &FlavorSpec, state: BillableState, ms: i64) -> Amount {
        let (rate, _) = self.hourly_micro_1024(flavor);
        Amount(rate * i128::from(self.multiplier(state).0) * i128::from(ms))
    }

    pub fn round(&self, a: Amount) -> Rounded {
        a.round(self.decimals, self.rounding)
    }
}

/// What a line of a bill sums: one server at one flavor in one state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LineKey {
    pub server_id: Uuid,
    pub flavor: FlavorSpec,
    pub state: BillableState,
}

/// One line of a bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub key: LineKey,
    /// The server's name as its latest interval in the period had it.
    pub server_name: String,
    /// Start of that latest interval (which name is shown, whatever the
    /// order the intervals came in).
    #[serde(skip)]
    latest_ms: i64,
    pub user_id: String,
    /// Milliseconds in the period.
    pub ms: i64,
    pub priced_by: PricedBy,
    pub amount: Amount,
}

/// A project's rated usage over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub project_id: String,
    pub period: Period,
    pub currency: String,
    /// By server, flavor, state.
    pub lines: Vec<LineItem>,
    /// The exact sum of the lines (each line and the total are rounded
    /// apart, once, where shown).
    pub total: Amount,
}

/// One line's usage before it is priced: a server at one flavor in one
/// state, its milliseconds in a period, and the name and user of its
/// latest interval there. Charges are linear in time, so a line is priced
/// once from its summed milliseconds, to the same exact amount as the sum
/// of its intervals' charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineUsage {
    pub key: LineKey,
    pub server_name: String,
    pub user_id: String,
    /// Start of the latest interval counted (whose name is shown).
    pub latest_ms: i64,
    pub ms: i64,
}

impl LineUsage {
    /// Adds `ms` of `i` (of this line) to it.
    pub fn add(&mut self, i: &Interval, ms: i64) {
        self.ms += ms;
        if i.start_ms > self.latest_ms {
            self.latest_ms = i.start_ms;
            self.server_name.clone_from(&i.server_name);
            self.user_id.clone_from(&i.user_id);
        }
    }

    /// Adds another sum of this line (over time disjoint from this one's).
    pub fn merge(&mut self, o: &LineUsage) {
        self.ms += o.ms;
        if o.latest_ms > self.latest_ms {
            self.latest_ms = o.latest_ms;
            self.server_name.clone_from(&o.server_name);
            self.user_id.clone_from(&o.user_id);
        }
    }

    /// `ms` of `i`, as a new line.
    pub fn of(i: &Interval, ms: i64) -> Self {
        LineUsage {
            key: LineKey {
                server_id: i.server_id,
                flavor: i.flavor.clone(),
                state: i.state,
            },
            server_name: i.server_name.clone(),
            user_id: i.user_id.clone(),
            latest_ms: i.start_ms,
            ms,
        }
    }
}

/// The order of bill lines ([`LineKey`]'s) between a line and an
/// interval, without building the interval's key.
fn key_order(k: &LineKey, i: &Interval) -> std::cmp::Ordering {
    (k.server_id, &k.flavor, k.state).cmp(&(i.server_id, &i.flavor, i.state))
}

/// `intervals`' time in `period` by line, in line order (open intervals
/// running until `now_ms`; intervals with no time in the period add
/// nothing). Each line's name and user are its latest interval's (the
/// first of equal starts, in `intervals`' order). The intervals are sorted
/// by reference and each line built once: no key is copied per interval.
pub fn sum_lines<'a>(
    intervals: impl IntoIterator<Item = &'a Interval>,
    period: Period,
    now_ms: i64,
) -> Vec<LineUsage> {
    let mut timed: Vec<(&Interval, i64)> = intervals
        .into_iter()
        .map(|i| (i, i.overlap_ms(period.start_ms, period.end_ms, now_ms)))
        .filter(|(_, ms)| *ms > 0)
        .collect();
    // Stable: equal keys keep the callers' order.
    timed.sort_by(|(a, _), (b, _)| {
        (a.server_id, &a.flavor, a.state).cmp(&(b.server_id, &b.flavor, b.state))
    });
    let mut lines: Vec<LineUsage> = Vec::new();
    for (i, ms) in timed {
        match lines.last_mut() {
            Some(line) if key_order(&line.key, i).is_eq() => line.add(i, ms),
            _ => lines.push(LineUsage::of(i, ms)),
        }
    }
    lines
}

/// Two sums of lines (each in line order, over disjoint time) as one, in
/// line order; of a line in both, `a`'s name wins a tie.
pub fn merge_lines(a: Vec<LineUsage>, b: Vec<LineUsage>) -> Vec<LineUsage> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.key.cmp(&y.key) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let (mut x, y) = (a.next(), b.next());
                    if let (Some(x), Some(y)) = (&mut x, &y) {
                        x.merge(y);
                    }
                    x
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

/// Prices `lines` (of one project, in key order, none empty) into a bill
/// over `period`.
pub fn rate_lines(
    table: &PriceTable,
    project_id: &str,
    lines: impl IntoIterator<Item = LineUsage>,
    period: Period,
) -> Bill {
    let lines: Vec<LineItem> = lines
        .into_iter()
        .map(|l| {
            let (rate, priced_by) = table.hourly_micro_1024(&l.key.flavor);
            LineItem {
                amount: Amount(
                    rate * i128::from(table.multiplier(l.key.state).0) * i128::from(l.ms),
                ),
                server_name: l.server_name,
                latest_ms: l.latest_ms,
                user_id: l.user_id,
                ms: l.ms,
                priced_by,
                key: l.key,
            }
        })
        .collect();
    Bill {
        project_id: project_id.to_owned(),
        period,
        currency: table.currency.clone(),
        total: lines.iter().map(|l| l.amount).sum(),
        lines,
    }
}

/// Rates `intervals` (of one project) over `period`; open intervals run
/// until `now_ms`. Intervals outside the period add nothing; lines with no
/// time in the period are left out.
pub fn bill<'a>(
    table: &PriceTable,
    project_id: &str,
    intervals: impl IntoIterator<Item = &'a Interval>,
    period: Period,
    now_ms: i64,
) -> Bill {
    rate_lines(
        table,
        project_id,
        sum_lines(intervals, period, now_ms),
        period,
    )
}

/// Flavors met in `intervals` that the table has no price for, by name
/// (they are billed by their resources).
pub fn unpriced<'a>(
    table: &PriceTable,
    intervals: impl IntoIterator<Item = &'a Interval>,
) -> BTreeMap<String, FlavorSpec> {
    intervals
        .into_iter()
        .filter(|i| table.flavor_price(&i.flavor).is_none())
        .map(|i| (i.flavor.name.clone(), i.flavor.clone()))
        .collect()
}
