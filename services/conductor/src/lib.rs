//! The conductor: the only writer of instance state. It decides on intents,
//! drives the build and delete sagas through the scheduler and the compute
//! agents, and owns the catalog (flavors, images).
//!
//! # Layout
//! - [`core`]: [`Conductor`], the pure state machine: `handle(record) ->
//!   records to emit`, folding its own instance events as it emits them.
//! - [`build`], [`delete`], [`resize`] (resize, cold migrate, confirm,
//!   revert, auto-confirm), [`rebuild`], [`evacuate`], [`live_migrate`],
//!   [`catalog`], [`images`], [`server_groups`], [`aggregates`]: one file
//!   per flow.
//! - [`timers`]: what each saga awaits and until when; timeouts.
//! - [`server_actions`]: reboot, stop, start, pause, unpause, suspend,
//!   resume (straight to the host), lock and unlock; [`preconditions`]:
//!   Nova's allowed states per action, one pure function.
//! - [`server_updates`]: name, description, metadata and tags.
//! - [`quotas`]: quota limits and usage; creates checked exactly.
//! - [`failed_intents`]: the verdict on an intent that could not be
//!   decoded or applied (dead-lettered), so its request never waits.
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
pub mod evacuate;
pub mod failed_intents;
pub mod images;
pub mod keypairs;
pub mod live_migrate;
pub mod preconditions;
pub mod quotas;
pub mod rebuild;
pub mod resize;
pub mod saga_metrics;
pub mod server_actions;
pub mod server_groups;
pub mod server_updates;
pub mod service;
pub mod services;
pub mod timers;

pub use crate::core::{Conductor, Dest, Emit};

#[cfg(test)]
mod saga_tests;
#[cfg(test)]
mod server_actions_tests;
#[cfg(test)]
mod tests;
