//! `novalog-api`: the Compute API v2.1 (Nova-compatible, with microversion
//! negotiation) in front of the log.
//!
//! The API never writes state. A write is validated, authorised, appended
//! to the `intents` topic as an intent, and answered once the conductor's
//! verdict (a record whose `causation_id` is the intent's `event_id`) has
//! been applied to this service's own projection, so a client reads its own
//! writes. Reads are served from that projection, kept in memory and in the
//! service's RocksDB (state and offsets commit together).
//!
//! # Layers
//! The crate imports in one direction, HTTP → domain → projection
//! (`tests/layers.rs` fails on an import the other way):
//! - **HTTP**: [`app`] (the shared [`app::App`] state and the
//!   [`app::router`]), [`controllers`] (thin handlers per resource:
//!   extract, validate, call the domain, render), [`http`] (request ids,
//!   the JSON body extractor, error shapes), [`validation`] (request bodies
//!   checked with Nova's 400 messages), [`views`] (response bodies in
//!   Nova's shapes), [`paging`] (`next` links), [`microversion`]'s
//!   negotiation, [`openapi`] (the document at `/openapi.json`),
//!   [`access`] (the access log and HTTP metrics), [`serve`] (the accept
//!   loop and its bounds on slow or hostile clients, `[wsgi]`),
//!   [`mounts`] (the Identity v3 and Image v2 subsets, crates of their
//!   own, `novalog_identity` and `novalog_image`, mounted at `/identity`
//!   and `/image`), and [`dashboard`] (the web console at `/dashboard`).
//! - **domain** ([`domain`]): what a request means: lookups in the
//!   projection, Nova's checks, intents, verdicts as outcomes.
//! - **projection** ([`projection`]): the folded state and its reads, the
//!   instance action log, the waiters a verdict wakes.
//!
//! Every layer may use what requests carry: [`error`] (Nova's error
//! bodies), [`auth`]'s [`auth::Context`], [`policy`]'s rules and
//! [`microversion::ApiVersion`].
//!
//! Around them: [`service`] ([`ApiService::start`] / [`ApiHandle`]: the
//! store, the projection consumer and the listener, and their shutdown
//! order) and [`bootstrap`] (the demo flavors and image).

pub mod access;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod controllers;
pub mod dashboard;
pub mod domain;
pub mod error;
pub mod http;
pub mod microversion;
pub mod mounts;
pub mod openapi;
pub mod paging;
pub mod policy;
pub mod projection;
pub mod serve;
pub mod service;
pub mod validation;
pub mod views;

pub use bootstrap::bootstrap_demo_catalog;
pub use error::ApiError;
pub use service::{ApiHandle, ApiService};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_admin;
#[cfg(test)]
mod tests_compute;
#[cfg(test)]
mod tests_dashboard;
#[cfg(test)]
mod tests_edge;
#[cfg(test)]
mod tests_identity;
#[cfg(test)]
mod tests_identity_admin;
#[cfg(test)]
mod tests_identity_scopes;
#[cfg(test)]
mod tests_image_sharing;
#[cfg(test)]
mod tests_images;
#[cfg(test)]
mod tests_memory;
#[cfg(test)]
mod tests_microversions;
#[cfg(test)]
mod tests_proxies;
#[cfg(test)]
mod tests_shapes;
#[cfg(test)]
mod tests_usage;
