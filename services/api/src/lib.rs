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
//! # Layout
//! - [`service`]: [`ApiService::start`] / [`ApiHandle`]: the store, the
//!   projection consumer and the listener, and their shutdown order.
//! - [`serve`]: the accept loop and its bounds on slow or hostile clients
//!   (`[wsgi]`).
//! - [`app`]: the shared [`app::App`] state and the [`app::router`].
//! - [`controllers`]: thin handlers per resource (versions, servers,
//!   flavors): extract, validate, call the domain, render.
//! - [`compute`], [`catalog`]: the domain side of servers and of
//!   flavors/images: lookups in the projection, checks, intents, verdicts.
//! - [`validation`]: request bodies checked with Nova's 400 messages.
//! - [`views`]: response bodies in Nova's shapes; [`paging`]: Nova's
//!   `max_limit` pages and `next` links.
//! - [`projection`]: the in-memory projection and its consumer handler.
//! - [`instance_actions`]: the action log of each server, folded from
//!   `instances` (os-instance-actions).
//! - [`intents`], [`verdicts`]: appending intents and waiting for verdicts.
//! - [`auth`], [`policy`], [`microversion`], [`http`], [`error`]: the
//!   request context (keystone tokens, or noauth2 in development), Nova's
//!   default policy, version negotiation, request ids and body handling,
//!   Nova's error bodies.
//! - [`identity`]: the Identity v3 subset at `/identity` (password and
//!   token auth, signed tokens, the catalog), users from `[identity]`.
//! - [`images`], [`controllers::images`]: the Image v2 subset at `/image`
//!   (Glance): metadata through the conductor, data under
//!   `<data_dir>/images`.
//! - [`bootstrap`]: the demo flavors and image.
//! - [`openapi`]: the OpenAPI document of the Compute API at `/openapi.json`.
//! - [`access`]: the access log and the HTTP metrics of every request.
//! - [`keypairs`], [`compute_services`]: keypairs (fingerprints,
//!   generation) and compute services / hypervisors.

pub mod access;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod compute;
pub mod compute_services;
pub mod controllers;
pub mod error;
pub mod http;
pub mod identity;
pub mod images;
pub mod instance_actions;
pub mod intents;
pub mod keypairs;
pub mod microversion;
pub mod openapi;
pub mod paging;
pub mod policy;
pub mod projection;
pub mod sagas;
pub mod serve;
pub mod service;
pub mod validation;
pub mod verdicts;
pub mod views;

pub use bootstrap::bootstrap_demo_catalog;
pub use error::ApiError;
pub use service::{ApiHandle, ApiService};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_admin;
#[cfg(test)]
mod tests_edge;
#[cfg(test)]
mod tests_images;
#[cfg(test)]
mod tests_memory;
