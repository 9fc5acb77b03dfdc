//! The conductor: the only writer of instance state. It decides on intents,
//! drives the build and delete sagas through the scheduler and the compute
//! agents, and owns the catalog (flavors, images).
//!
//! # Layout
//! - [`core`]: [`Conductor`], the pure state machine: `handle(record) ->
//!   records to emit`, folding its own instance events as it emits them.
//! - [`build`], [`delete`], [`catalog`], [`server_groups`], [`aggregates`],
//!   [`keypairs`], [`services`]: one file per flow.
//! - [`service`]: the shell: consumes `intents`, `scheduler` and
//!   `compute-events`, appends what the core emits, and persists its state
//!   with the consumed offsets.

pub mod aggregates;
pub mod build;
pub mod catalog;
pub mod core;
pub mod delete;
pub mod keypairs;
pub mod server_groups;
pub mod service;
pub mod services;

pub use crate::core::{Conductor, Dest, Emit};

#[cfg(test)]
mod tests;
