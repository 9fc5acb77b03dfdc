//! The conductor: the only writer of instance state. It decides on intents,
//! drives every saga (build, delete, server actions, resize and cold
//! migrate, live migrate, evacuate, rebuild) through the scheduler and the
//! compute agents with a deadline on each step, and owns the catalog as
//! accepted (flavors, images, keypairs, server groups, aggregates,
//! quotas, services).
//!
//! # Layout
//! - [`core`]: [`Conductor`], the state: one [`table::Table`] per kind of
//!   row (instances, flavors, awaited steps, ...), each loading and
//!   persisting itself with the consumed offsets; and
//!   [`Conductor::instance_event`], the one way an instance changes.
//! - [`dispatch`]: `handle(record, now) -> records to emit`, the one match
//!   that hands each input to its flow.
//! - [`saga`]: [`saga::Step`], which saga an instance is in and what it
//!   awaits, as a type, and the shape of every saga's table
//!   ([`saga::Row`]: a step's host, each answer and what follows it, what
//!   silence leads to); [`timers`]: until when it awaits, and what a
//!   timeout does.
//! - Sagas, one file each: [`build`], [`delete`], [`resize`] (resize and
//!   cold migrate, confirm, revert, auto-confirm), [`live_migrate`],
//!   [`evacuate`], [`rebuild`], the last four each with its steps and
//!   compensations as a table (its `row`) that its `on_fact` and
//!   `on_timeout` follow; [`migration`]: the steps every migration shares
//!   (request, scheduling, claims and alternates, abort, error).
//! - [`server_actions`]: reboot, stop, start, pause, unpause, suspend,
//!   resume, rescue, unrescue, shelve and its offload, createImage,
//!   soft delete and restore (straight to the host), trigger_crash_dump
//!   (recorded, cast to the host), lock, unlock and os-resetState (decided
//!   here alone); [`shelve`]: the shelved snapshot, the
//!   offload's timing and the unshelve of an offloaded server (scheduled
//!   and spawned again); [`snapshot`]: the snapshot image both createImage
//!   and shelve fill (queued → saving → active, or deleted on failure);
//!   [`console`]: os-getConsoleOutput, a read asked of the host and
//!   relayed back as the intent's verdict; [`preconditions`]:
//!   Nova's allowed states per action, one pure function.
//! - [`consoles`]: guests' VNC displays as their hosts report them, and
//!   console tokens issued on them.
//! - [`server_updates`]: name, description, metadata and tags.
//! - Catalog and operator flows, one file each: [`catalog`] (flavors and
//!   their access), [`images`], [`keypairs`], [`server_groups`],
//!   [`aggregates`], [`services`], [`quotas`] (limits and usage; creates
//!   checked exactly).
//! - [`failed_intents`]: the verdict on an intent that could not be
//!   decoded or applied (dead-lettered), so its request never waits.
//! - [`saga_metrics`]: saga durations for Prometheus.
//! - [`service`]: the shell: consumes `intents`, `scheduler` and
//!   `compute-events`, appends what the core emits, commits the changed
//!   rows with the consumed offsets, and runs the timer task that appends
//!   a timeout record when a deadline passes.

pub mod aggregates;
pub mod build;
pub mod catalog;
pub mod console;
pub mod consoles;
pub mod core;
pub mod delete;
pub mod dispatch;
pub mod evacuate;
pub mod failed_intents;
pub mod images;
pub mod keypairs;
pub mod live_migrate;
pub mod migration;
pub mod power_sync;
pub mod preconditions;
pub mod quotas;
pub mod rebuild;
pub mod resize;
pub mod saga;
pub mod saga_metrics;
pub mod server_actions;
pub mod server_groups;
pub mod server_updates;
pub mod service;
pub mod services;
pub mod shelve;
pub mod snapshot;
pub mod table;
pub mod timers;

pub use crate::core::{Conductor, Dest, Emit};

#[cfg(test)]
mod consoles_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod saga_tests;
#[cfg(test)]
mod server_actions_tests;
#[cfg(test)]
mod shelve_tests;
#[cfg(test)]
mod tests;
