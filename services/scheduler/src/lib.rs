//! The scheduler: filters, then weighers, then a pick among the best
//! `host_subset_size` hosts, over a projection of host state (DESIGN §6,
//! Nova's `nova/scheduler`).
//!
//! # Layout
//! - [`host_state`]: what the scheduler knows of a host, folded from the
//!   `hosts` and `compute-events` topics, plus the resources of its own
//!   decisions that no claim has answered yet; and host aggregates.
//! - [`filters`]: one file per filter, each a pure `host_passes`.
//! - [`weighers`]: one file per weigher; raw values are normalised to 0..1
//!   across the candidates in one place, then multiplied and summed.
//! - `index`: compact per-host rows in trees of per-node summaries; a
//!   branch and bound over them is the fast path.
//! - [`scheduler`]: [`Scheduler`], the pure decision: request in, hosts out
//!   (fast, and the brute-force reference it equals).
//! - [`bench`]: decisions per second and p99 latency on a synthetic cloud.
//! - [`service`]: the consumer shell and the binary's entry.

pub mod bench;
pub mod filters;
pub mod host_state;
mod index;
pub mod scheduler;
pub mod service;
pub mod weighers;

pub use host_state::{Aggregate, HostState};
pub use scheduler::Scheduler;
