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
    let mut lines: BTreeMap<LineKey, LineItem> = BTreeMap::new();
    for i in intervals {
        let ms = i.overlap_ms(period.start_ms, period.end_ms, now_ms);
        if ms == 0 {
            continue;
        }
        let key = LineKey {
            server_id: i.server_id,
            flavor: i.flavor.clone(),
            state: i.state,
        };
        let amount = table.charge(&i.flavor, i.state, ms);
        let line = lines.entry(key.clone()).or_insert_with(|| LineItem {
            key,
            server_name: i.server_name.clone(),
            latest_ms: i.start_ms,
            user_id: i.user_id.clone(),
            ms: 0,
            priced_by: table.hourly_micro_1024(&i.flavor).1,
            amount: Amount(0),
        });
        line.ms += ms;
        line.amount += amount;
        if i.start_ms > line.latest_ms {
            line.latest_ms = i.start_ms;
            line.server_name = i.server_name.clone();
        }
    }
    let lines: Vec<LineItem> = lines.into_values().collect();
    Bill {
        project_id: project_id.to_owned(),
        period,
        currency: table.currency.clone(),
        total: lines.iter().map(|l| l.amount).sum(),
        lines,
    }
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
