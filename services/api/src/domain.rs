//! The domain layer: what a request means. Each module turns a validated
//! request into lookups in the projection, Nova's checks (visibility,
//! policy, preconditions the API can see) and intents, and the conductor's
//! verdicts into outcomes.
//!
//! It sits between the HTTP layer (the router, controllers, extractors,
//! views and validation, which call it) and [`crate::projection`] (which it
//! reads): nothing here imports the HTTP modules, axum or [`crate::app`].
//! Errors are [`crate::error::ApiError`], the request's caller
//! [`crate::auth::Context`], rules [`crate::policy`]: the modules every layer
//! shares (`tests/layers.rs` holds all of this to it).
//!
//! # Layout
//! - [`compute`]: servers (Nova's `compute.api.API`): create, delete,
//!   actions, changes, lists and their filters.
//! - [`catalog`]: flavors and the images servers boot from.
//! - [`keypair_api`]: keypairs (Nova's `KeypairAPI`): names,
//!   fingerprints, generation.
//! - [`compute_services`]: compute services and hypervisors.
//! - [`consoles`]: remote consoles: the token, the conductor's verdict,
//!   the URL; what a token names.
//! - [`intents`]: appending intents and waiting for their verdicts.
//! - [`usage`]: the billing service's usage intervals, in process or
//!   over its internal listener.

use std::sync::Arc;

use crate::projection::Projection;

pub mod catalog;
pub mod compute;
pub mod compute_services;
pub mod consoles;
pub mod diagnostics;
pub mod intents;
pub mod keypair_api;
pub mod server_sort;
pub mod usage;

use intents::Intents;

/// What the domain works with: the projection it reads, where it writes,
/// and the limits it applies. The HTTP layer's [`crate::app::App`] holds
/// one and derefs to it.
pub struct Domain {
    /// The in-memory projection reads are served from.
    pub projection: Arc<Projection>,
    /// Where writes go.
    pub intents: Intents,
    /// Heartbeats older than this make a host's servers' `host_status`
    /// UNKNOWN (nova.conf `service_down_time`).
    pub service_down_time_ms: i64,
    /// Every project's quotas unless set otherwise (`[quota]`).
    pub quota_defaults: novalog_schemas::quota::QuotaDefaults,
    /// The most items one page of a list holds (`[api] max_limit`).
    pub max_limit: usize,
    /// Where usage is read from (the billing service).
    pub usage: Arc<dyn usage::UsageSource>,
    /// `[billing]`'s price table, validated.
    pub prices: Arc<novalog_billing::PriceTable>,
    /// `[vnc]`: whether consoles are served and the URL they open at.
    pub consoles: consoles::ConsoleSettings,
}

/// oslo `bool_from_string(strict=True)`, without the error: `None` for
/// anything else.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// A query's non-negative integer (Nova's `non_negative_integer`: digits
/// only); a huge one is the largest (Nova's `int()` has no bound, and a
/// page is capped at `max_limit` anyway).
pub fn non_negative(v: &str) -> Option<usize> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse().unwrap_or(usize::MAX))
}

/// A query's integer of any size (Python's `int()`), saturated to `i64`.
pub fn integer(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse().unwrap_or(if v.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// Nova's `get_limit_and_marker`: the page size is the client's `limit`
/// capped at `max_limit`, or `max_limit` when it gave none (0 stays 0: an
/// empty page).
pub fn page_size(requested: Option<usize>, max_limit: usize) -> usize {
    requested.map_or(max_limit, |l| l.min(max_limit))
}

/// Nova's `common.get_id_from_href`: the last path segment of a link, or
/// the reference itself.
pub fn id_from_href(href: &str) -> String {
    let path = href.split(['?', '#']).next().unwrap_or(href);
    path.rsplit('/').next().unwrap_or(path).to_owned()
}
