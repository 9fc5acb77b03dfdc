//! The compute agent (nova-compute): one agent serves one or more hosts
//! (many fake hosts in one process for tests and benchmarks). It claims
//! resources against its own resource tracker, drives the virt driver, and
//! reports what happened on `compute-events` and what it has on `hosts`.
//!
//! # Layout
//! - [`driver`]: the virt driver contract, in the shape of Nova's.
//! - [`fake`]: the in-memory driver with latency and failure injection;
//!   [`fake_vnc`]: the minimal VNC server each running fake guest gets.
//! - [`libvirt`]: the libvirt driver (`virt` crate), disks as qcow2
//!   overlays on the `_base` image cache.
//! - [`tracker`]: per-host resource tracking and claims (Nova's Claim).
//! - [`agent`]: commands in, driver calls and facts out, per host in order,
//!   hosts concurrently.
//! - [`snapshot`]: where snapshots' bytes are stored, with their digests;
//!   console logs cut as Nova cuts them.
//! - [`service`]: the consumer shell, registration and heartbeats.

pub mod agent;
pub mod driver;
pub mod fake;
pub mod fake_vnc;
pub mod libvirt;
pub mod migrate;
pub mod service;
pub mod snapshot;
pub mod tracker;
