//! `novalog-billing`: usage metered to the millisecond from the
//! `instances` topic, rated exactly by the `[billing]` price table, the
//! same bill from any replay (DESIGN §9).
//!
//! # Layout
//! - [`meter`]: the pure fold from instance events to usage intervals per
//!   server (billable state, flavor, host, start and end).
//! - [`money`]: exact money — prices in integer micro-units, charges as
//!   exact integers, one rounding rule applied where an amount is shown.
//! - [`period`]: half-open billing periods and the times the API accepts.
//! - [`rate`]: the price table and the rating of intervals into a bill.
//! - [`usage`]: usage hours as Nova's os-simple-tenant-usage shows them.
//! - [`summary`]: when a period is closed (by the log's time) and its
//!   rated summary, published on the `billing` topic.
//! - [`totals`]: closed usage summed by project, month and bill line, for
//!   reads that need not sum every interval again.
//! - [`service`]: the consumer shell (RocksDB, the outbox, the ledger).
//! - [`read`]: the internal listener the API reads usage from.
//!
//! Nothing but [`service`] and [`read`] does I/O.

pub mod check;
pub mod fasthash;
pub mod header;
pub mod meter;
pub mod money;
pub mod period;
pub mod rate;
pub mod read;
pub mod service;
pub mod summary;
pub mod totals;
pub mod usage;

#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod service_tests;

pub use meter::{BillableState, FlavorSpec, Interval, Meter, ServerMeter};
pub use money::{Amount, Micros, PriceError, Rounded, Rounding};
pub use period::{Period, PeriodError};
pub use rate::{Bill, LineItem, LineUsage, PriceTable, bill};
