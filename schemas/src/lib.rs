//! Novalog's shared vocabulary: the envelope every record travels in, the
//! events and commands of every flow, and Nova's instance state model.
//!
//! # Layout
//! - `proto/novalog.proto`: the wire schemas, compiled by prost in `build.rs`
//!   into the private `pb` module. Nothing outside this crate sees them.
//! - [`values`]: flavors, images, faults, resources, host usage.
//! - [`state`]: `vm_state`, `task_state`, `power_state` and the API status
//!   derived from them, with the allowed-state sets next to the states.
//! - [`actions`]: server actions (reboot, stop, lock, ...) and what each
//!   does to the instance's state; [`preconditions`]: the states each may
//!   start from (Nova's `check_instance_state`), and why not.
//! - [`events`]: every record type, one enum per topic ([`Intent`],
//!   [`InstanceEvent`], [`SchedulerEvent`], [`ComputeCommand`],
//!   [`ComputeFact`], [`HostEvent`], [`CatalogEvent`]) and [`Event`], which
//!   holds any of them.
//! - [`billing`]: the `billing` topic's rated period summaries.
//! - [`console`]: remote console tokens (Nova's consoleauth): how a token
//!   is hashed, what an issued one names, when it stops working.
//! - [`identity`]: Keystone's directory as the identity service writes it.
//! - [`image`]: Glance's rules on images (JSON-patch, upload states,
//!   bounds, policy), decided alike by the API and the conductor.
//! - [`quota`]: Nova's quota resources, defaults and the create check.
//! - [`rejection`]: why an intent was turned down ([`Rejection`]), as a
//!   kind the API alone maps to an HTTP status.
//! - [`envelope`]: [`Envelope`] and its binary encoding ([`encode`], [`decode`]).
//! - [`instance`]: the instance aggregate and its `evolve`, shared by every
//!   reader of the `instances` topic so that all of them fold alike.

pub mod actions;
pub mod billing;
pub mod console;
mod convert;
pub mod envelope;
pub mod events;
pub mod identity;
pub mod image;
pub mod instance;
pub mod migration;
pub mod preconditions;
pub mod quota;
pub mod rejection;
pub mod state;
pub mod values;

// `dead_code`: the payloads of unit records (`InstanceUnlocked {}`) are
// documented in the schema but never built, an empty payload being the same.
#[allow(clippy::all, rust_2018_idioms, dead_code)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/novalog.v1.rs"));
}

pub use actions::ServerAction;
pub use envelope::{
    Actor, DecodeError, Envelope, Meta, decode, decode_meta, decode_on, encode, peek_header,
};
pub use events::{
    CatalogEvent, ComputeCommand, ComputeFact, Event, HostEvent, InstanceEvent, Intent,
    SchedulerEvent, Topic,
};
pub use instance::Instance;
pub use rejection::{Rejection, RejectionKind};
pub use state::{PowerState, TaskState, VmState};
pub use values::{
    AccessChange, AccessConfig, Fault, Flavor, HostUsage, Image, ImageMember, Resources,
};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
