//! Metering: each server's life on `instances` as usage intervals.
//!
//! The fold runs the instance aggregate's own `evolve` (the one the
//! conductor decides with), then reads off what a bill depends on — the
//! billable state, the flavor, the host. Whenever one of those changes,
//! the open interval ends at the event's instant and the next begins
//! there. So a resize bills the new flavor from `ResizeFinished` (Nova's
//! finish_resize, where the instance takes the new flavor), a revert goes
//! back to the old one at `ResizeReverted`, and a migration starts a new
//! interval on the new host at the same rate. Task states (rebooting,
//! resize_migrating, ...) do not change a bill: the vm_state does.
//!
//! Duplicates change nothing: `evolve` ignores a record at or below the
//! version it has applied, and a deleted server is a tombstone that no
//! copy of its history brings back.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use novalog_schemas::instance::evolve;
use novalog_schemas::{Envelope, Event, Flavor, Instance, InstanceEvent, VmState};

/// What a server is billed as while it is in a vm_state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BillableState {
    /// Active, resized (running the new flavor until confirmed or
    /// reverted) and rescued.
    Running,
    Paused,
    Suspended,
    Stopped,
    /// Shelved and shelved-offloaded.
    Shelved,
    Building,
    Error,
    /// Soft-deleted (restorable); a hard delete ends the server's usage.
    Deleted,
}

impl BillableState {
    pub const ALL: [BillableState; 8] = [
        BillableState::Running,
        BillableState::Paused,
        BillableState::Suspended,
        BillableState::Stopped,
        BillableState::Shelved,
        BillableState::Building,
        BillableState::Error,
        BillableState::Deleted,
    ];

    /// The name used in the price table and on bills.
    pub fn as_str(self) -> &'static str {
        match self {
            BillableState::Running => "running",
            BillableState::Paused => "paused",
            BillableState::Suspended => "suspended",
            BillableState::Stopped => "stopped",
            BillableState::Shelved => "shelved",
            BillableState::Building => "building",
            BillableState::Error => "error",
            BillableState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The billable state of a vm_state; `None` once the server is gone.
    pub fn of(vm_state: VmState) -> Option<Self> {
        Some(match vm_state {
            VmState::Active | VmState::Resized | VmState::Rescued => BillableState::Running,
            VmState::Paused => BillableState::Paused,
            VmState::Suspended => BillableState::Suspended,
            VmState::Stopped => BillableState::Stopped,
            VmState::Shelved | VmState::ShelvedOffloaded => BillableState::Shelved,
            VmState::Building => BillableState::Building,
            VmState::Error => BillableState::Error,
            VmState::SoftDeleted => BillableState::Deleted,
            VmState::Deleted => return None,
        })
    }
}

/// The sizes of a flavor a bill depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlavorSpec {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
    pub ephemeral_gb: u64,
}

impl From<&Flavor> for FlavorSpec {
    fn from(f: &Flavor) -> Self {
        FlavorSpec {
            id: f.id.clone(),
            name: f.name.clone(),
            vcpus: f.vcpus,
            ram_mb: f.ram_mb,
            disk_gb: f.disk_gb,
            ephemeral_gb: f.ephemeral_gb,
        }
    }
}

/// One stretch of a server's life at one rate on one host:
/// `[start_ms, end_ms)`, open while `end_ms` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub server_id: Uuid,
    pub server_name: String,
    pub project_id: String,
    pub user_id: String,
    pub flavor: FlavorSpec,
    pub host: Option<String>,
    pub state: BillableState,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

impl Interval {
    /// Milliseconds of this interval inside `[from, to)`; an open interval
    /// runs until `now_ms`. Integer arithmetic: two adjacent windows
    /// always add up to the window they split.
    pub fn overlap_ms(&self, from: i64, to: i64, now_ms: i64) -> i64 {
        let end = self.end_ms.unwrap_or(now_ms.max(self.start_ms));
        (end.min(to) - self.start_ms.max(from)).max(0)
    }
}

/// What a bill depends on at one instant; a change of any part starts a
/// new interval.
#[derive(Debug, Clone)]
struct Rate<'a> {
    state: BillableState,
    flavor: &'a Flavor,
    host: &'a Option<String>,
}

fn rate_of(i: &Instance) -> Option<Rate<'_>> {
    Some(Rate {
        state: BillableState::of(i.vm_state)?,
        flavor: &i.flavor,
        host: &i.host,
    })
}

fn same_rate(open: &Interval, r: &Rate<'_>) -> bool {
    open.state == r.state
        && &open.host == r.host
        && open.flavor.id == r.flavor.id
        && open.flavor.vcpus == r.flavor.vcpus
        && open.flavor.ram_mb == r.flavor.ram_mb
        && open.flavor.disk_gb == r.flavor.disk_gb
        && open.flavor.ephemeral_gb == r.flavor.ephemeral_gb
}

/// One server's meter: the instance as folded so far and its open
/// interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMeter {
    /// `None` before its creation and after its deletion.
    pub instance: Option<Instance>,
    pub open: Option<Interval>,
    /// Deleted: nothing changes it any more (a redelivered create
    /// included).
    pub gone: bool,
}

/// What one record did to a server's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metered {
    /// The interval the record ended, when it lasted at least 1 ms.
    pub closed: Option<Interval>,
    /// The interval left open changed.
    pub changed: bool,
    /// The record changed the meter (it is to be stored); false for a
    /// duplicate, a verdict, or a record of an unknown server.
    pub applied: bool,
}

impl ServerMeter {
    /// Folds one `instances` record of this server.
    pub fn apply(&mut self, env: &Envelope) -> Metered {
        if self.gone || !matches!(env.event, Event::Instance(_)) {
            return Metered::default();
        }
        let version = self.instance.as_ref().map(|i| i.version);
        let next = evolve(self.instance.take(), env);
        if next.as_ref().map(|i| i.version) == version {
            // A duplicate, a verdict, or a record of an unknown server.
            self.instance = next;
            return Metered::default();
        }
        let at = env.meta.occurred_at_ms;
        let mut out = Metered {
            applied: true,
            ..Metered::default()
        };
        let rate = next.as_ref().and_then(rate_of);
        let keep = match (&self.open, &rate) {
            (Some(open), Some(r)) => same_rate(open, r),
            (None, None) => true,
            _ => false,
        };
        if !keep {
            out.changed = true;
            if let Some(mut open) = self.open.take() {
                // A record stamped before the interval began (clocks of two
                // conductors) closes it empty rather than backwards.
                let end = at.max(open.start_ms);
                open.end_ms = Some(end);
                if end > open.start_ms {
                    out.closed = Some(open);
                }
            }
            if let (Some(i), Some(r)) = (&next, &rate) {
                self.open = Some(Interval {
                    server_id: i.id,
                    server_name: i.name.clone(),
                    project_id: i.project_id.clone(),
                    user_id: i.user_id.clone(),
                    flavor: FlavorSpec::from(r.flavor),
                    host: r.host.clone(),
                    state: r.state,
                    start_ms: at,
                    end_ms: None,
                });
            }
        } else if let (Some(open), Some(i)) = (&mut self.open, &next)
            && open.server_name != i.name
        {
            // A rename is not a new interval; the open one shows the name.
            open.server_name = i.name.clone();
            out.changed = true;
        }
        if next.as_ref().is_some_and(Instance::is_deleted) {
            self.gone = true;
            self.instance = None;
            out.changed = true;
        } else {
            self.instance = next;
        }
        out
    }
}

/// The server an `instances` record is about, when it is one.
pub fn server_of(env: &Envelope) -> Option<Uuid> {
    match &env.event {
        // Verdicts and reads change no server.
        Event::Instance(
            InstanceEvent::IntentRejected { .. } | InstanceEvent::ConsoleOutputRead { .. },
        ) => None,
        Event::Instance(_) => Uuid::parse_str(&env.meta.aggregate_id).ok(),
        // Other topics' records are about no server's usage (a new topic
        // fails to compile here until it is decided).
        Event::Intent(_)
        | Event::Scheduler(_)
        | Event::Compute(_)
        | Event::ComputeFact(_)
        | Event::Host(_)
        | Event::Catalog(_)
        | Event::DeadLetter(_)
        | Event::Billing(_) => None,
    }
}

/// Folds a whole history in memory: every closed interval in the order
/// they closed, then the intervals still open. For tests and for readers
/// that fold `instances` themselves.
#[derive(Debug, Default)]
pub struct Meter {
    pub servers: std::collections::HashMap<Uuid, ServerMeter>,
    pub closed: Vec<Interval>,
}

impl Meter {
    pub fn apply(&mut self, env: &Envelope) {
        let Some(id) = server_of(env) else { return };
        let m = self.servers.entry(id).or_default().apply(env);
        if let Some(c) = m.closed {
            self.closed.push(c);
        }
    }

    /// Closed intervals, then open ones (by server id).
    pub fn intervals(&self) -> Vec<Interval> {
        let mut open: Vec<&Interval> = self
            .servers
            .values()
            .filter_map(|s| s.open.as_ref())
            .collect();
        open.sort_by_key(|i| i.server_id);
        self.closed.iter().chain(open).cloned().collect()
    }
}
