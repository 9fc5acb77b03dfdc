//! Usage as Nova's `os-simple-tenant-usage` reports it, read off the same
//! intervals the bill is rated from.
//!
//! Nova counts a server's hours from its launch (`launched_at`) to its
//! termination (`terminated_at`), whatever it did in between; a server
//! that never launched is not listed. Here that is: every interval from
//! the first one in a launched state on, except building and
//! soft-deleted time (Nova sets `terminated_at` when a server is
//! deleted, soft or not). So a server's hours are exactly the sum of the
//! quantities of its `/billing/v1` line items in the other states.
//!
//! The totals are exact sums over intervals (a resized server's vCPU-hours
//! are its old flavor's until the resize and the new one's after), where
//! Nova multiplies the whole life by the current flavor.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::meter::{BillableState, FlavorSpec, Interval};
use crate::money::MS_PER_HOUR;
use crate::period::Period;

/// Whether time in `state` counts toward usage hours.
pub fn counts(state: BillableState) -> bool {
    !matches!(state, BillableState::Building | BillableState::Deleted)
}

/// Whether `state` means the server has launched (Nova's `launched_at`
/// is set when it first becomes active).
fn launched(state: BillableState) -> bool {
    matches!(
        state,
        BillableState::Running
            | BillableState::Paused
            | BillableState::Suspended
            | BillableState::Stopped
            | BillableState::Shelved
    )
}

/// Nova's `vm_state` name for a billable state, as usage shows it.
pub fn vm_state_name(state: BillableState) -> &'static str {
    match state {
        BillableState::Running => "active",
        BillableState::Paused => "paused",
        BillableState::Suspended => "suspended",
        BillableState::Stopped => "stopped",
        BillableState::Shelved => "shelved_offloaded",
        BillableState::Building => "building",
        BillableState::Error => "error",
        BillableState::Deleted => "terminated",
    }
}

/// One server's usage over a period (Nova's `server_usages[]` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUsage {
    pub server_id: Uuid,
    pub project_id: String,
    /// The name its latest interval has.
    pub name: String,
    /// The flavor of its latest interval.
    pub flavor: FlavorSpec,
    /// Launch: the start of its first interval in a launched state.
    pub started_at_ms: i64,
    /// Termination: the end of its last interval, or the start of a
    /// soft delete; `None` while it lives.
    pub ended_at_ms: Option<i64>,
    /// Nova's state name (`active`, `stopped`, ..., `terminated`).
    pub state: &'static str,
    /// Counted milliseconds inside the period.
    pub ms: i64,
    /// Sums over its intervals of size × milliseconds in the period.
    pub vcpu_ms: i128,
    pub memory_mb_ms: i128,
    pub local_gb_ms: i128,
}

impl ServerUsage {
    pub fn hours(&self) -> f64 {
        hours(i128::from(self.ms))
    }

    /// Seconds from launch to termination (or `now_ms`), as Nova's
    /// `uptime`.
    pub fn uptime_s(&self, now_ms: i64) -> i64 {
        ((self.ended_at_ms.unwrap_or(now_ms) - self.started_at_ms) / 1000).max(0)
    }
}

/// `ms` (or size × ms) in hours, as the float Nova's JSON has.
pub fn hours(ms: i128) -> f64 {
    ms as f64 / MS_PER_HOUR as f64
}

/// The usage of every server in `intervals` that had launched before the
/// period's end and had not ended before its start (Nova's
/// `get_active_by_window_joined`), sorted by project then server id (the
/// order Nova pages in). Open intervals run until `now_ms`.
pub fn server_usages(intervals: &[Interval], period: Period, now_ms: i64) -> Vec<ServerUsage> {
    let mut by_server: BTreeMap<Uuid, Vec<&Interval>> = BTreeMap::new();
    for i in intervals {
        by_server.entry(i.server_id).or_default().push(i);
    }
    let mut out = Vec::new();
    for (id, mut mine) in by_server {
        mine.sort_by_key(|i| i.start_ms);
        let Some(first) = mine.iter().position(|i| launched(i.state)) else {
            continue;
        };
        let started_at_ms = mine[first].start_ms;
        let Some(latest) = mine.last().copied() else {
            continue;
        };
        let ended_at_ms = match latest.end_ms {
            // The last interval closed: the server is gone.
            Some(end) => Some(end),
            None if latest.state == BillableState::Deleted => Some(latest.start_ms),
            None => None,
        };
        if started_at_ms >= period.end_ms || ended_at_ms.is_some_and(|e| e <= period.start_ms) {
            continue;
        }
        let mut u = ServerUsage {
            server_id: id,
            project_id: latest.project_id.clone(),
            name: latest.server_name.clone(),
            flavor: latest.flavor.clone(),
            started_at_ms,
            ended_at_ms,
            state: if ended_at_ms.is_some() {
                "terminated"
            } else {
                vm_state_name(latest.state)
            },
            ms: 0,
            vcpu_ms: 0,
            memory_mb_ms: 0,
            local_gb_ms: 0,
        };
        for i in &mine[first..] {
            if !counts(i.state) {
                continue;
            }
            let ms = i.overlap_ms(period.start_ms, period.end_ms, now_ms);
            let wide = i128::from(ms);
            u.ms += ms;
            u.vcpu_ms += i128::from(i.flavor.vcpus) * wide;
            u.memory_mb_ms += i128::from(i.flavor.ram_mb) * wide;
            u.local_gb_ms += i128::from(i.flavor.disk_gb + i.flavor.ephemeral_gb) * wide;
        }
        out.push(u);
    }
    out.sort_by(|a, b| (&a.project_id, a.server_id).cmp(&(&b.project_id, b.server_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn flavor(vcpus: u32, ram_mb: u64, disk_gb: u64) -> FlavorSpec {
        FlavorSpec {
            id: format!("f{vcpus}"),
            name: format!("m{vcpus}"),
            vcpus,
            ram_mb,
            disk_gb,
            ephemeral_gb: 1,
        }
    }

    fn iv(
        server: u128,
        state: BillableState,
        f: &FlavorSpec,
        start: i64,
        end: Option<i64>,
    ) -> Interval {
        Interval {
            server_id: Uuid::from_u128(server),
            server_name: format!("vm{server}"),
            project_id: "p1".into(),
            user_id: "u".into(),
            flavor: f.clone(),
            host: Some("h".into()),
            state,
            start_ms: start,
            end_ms: end,
        }
    }

    #[test]
    fn hours_run_from_launch_to_termination_in_every_launched_state() {
        use BillableState::*;
        let small = flavor(1, 512, 1);
        let big = flavor(2, 2048, 20);
        // Built for 10 min, running 2 h, stopped 1 h, resized (running
        // the big flavor) 30 min, deleted.
        let life = vec![
            iv(1, Building, &small, 0, Some(H / 6)),
            iv(1, Running, &small, H / 6, Some(H / 6 + 2 * H)),
            iv(1, Stopped, &small, H / 6 + 2 * H, Some(H / 6 + 3 * H)),
            iv(1, Running, &big, H / 6 + 3 * H, Some(H / 6 + 3 * H + H / 2)),
        ];
        let all = Period::new(0, 10 * H).unwrap();
        let u = &server_usages(&life, all, 100 * H)[0];
        assert_eq!(u.ms, 3 * H + H / 2);
        assert_eq!(u.hours(), 3.5);
        assert_eq!(u.started_at_ms, H / 6);
        assert_eq!(u.ended_at_ms, Some(H / 6 + 3 * H + H / 2));
        assert_eq!(u.state, "terminated");
        assert_eq!(u.flavor, big);
        assert_eq!(hours(u.vcpu_ms), 3.0 + 1.0);
        assert_eq!(hours(u.memory_mb_ms), 512.0 * 3.0 + 2048.0 * 0.5);
        assert_eq!(hours(u.local_gb_ms), 2.0 * 3.0 + 21.0 * 0.5);
        assert_eq!(u.uptime_s(0), (3 * H + H / 2) / 1000);

        // A window inside: only its part, split exactly.
        let (a, b) = Period::new(0, 10 * H).unwrap().split(H);
        let (ua, ub) = (
            &server_usages(&life, a, 100 * H)[0],
            &server_usages(&life, b, 100 * H)[0],
        );
        assert_eq!(ua.ms, H - H / 6);
        assert_eq!(ua.ms + ub.ms, u.ms);
    }

    #[test]
    fn only_servers_launched_in_or_before_the_window_and_not_ended_before_it() {
        use BillableState::*;
        let f = flavor(1, 512, 1);
        let intervals = vec![
            // Never launched: failed to build.
            iv(1, Building, &f, 0, Some(H)),
            iv(1, Error, &f, H, None),
            // Ended before the window.
            iv(2, Running, &f, 0, Some(H)),
            // Launched after it.
            iv(3, Running, &f, 5 * H, None),
            // Running through it, still open: counted until now.
            iv(4, Running, &f, 0, None),
            // Soft-deleted inside it.
            iv(5, Running, &f, 0, Some(2 * H + H / 2)),
            iv(5, Deleted, &f, 2 * H + H / 2, None),
        ];
        let got = server_usages(&intervals, Period::new(2 * H, 4 * H).unwrap(), 3 * H);
        let ids: Vec<u128> = got.iter().map(|u| u.server_id.as_u128()).collect();
        assert_eq!(ids, [4, 5]);
        assert_eq!(got[0].ms, H, "open: until now");
        assert_eq!(got[0].state, "active");
        assert_eq!(got[0].ended_at_ms, None);
        assert_eq!(got[0].uptime_s(3 * H), 3 * H / 1000);
        assert_eq!(got[1].ms, H / 2);
        assert_eq!(got[1].state, "terminated");
        assert_eq!(got[1].ended_at_ms, Some(2 * H + H / 2));
    }
}
