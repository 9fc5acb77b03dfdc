//! Running totals of closed usage: per project and UTC month, each bill
//! line's milliseconds, brought up to date with the intervals closed since
//! the last read ([`Totals::catch_up`]), so a bill over a month (the rating
//! API's default period: the month so far) is read off them instead of
//! summed from every interval again. Nothing is summed on the fold's path:
//! a replay that is never read pays nothing for them.
//!
//! Exact by construction: an interval's time in a month is the same
//! integer however it is summed, and charges are linear in time, so a
//! line priced from its summed milliseconds is the sum of its intervals'
//! charges to the last unit. A month is used whole only when all of its
//! closed time lies inside the period asked for (or none of it does);
//! otherwise [`Totals::lines`] answers `None` and the caller sums the
//! intervals themselves.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, TimeZone};

use crate::meter::Interval;
use crate::period::Period;
use crate::rate::{LineKey, LineUsage, merge_lines};

/// The UTC month holding `ms`, as `[start, end)`; `None` outside the
/// calendar's range.
pub fn month_of(ms: i64) -> Option<Period> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    let start = chrono::Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()?;
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let end = chrono::Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?;
    Some(Period {
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
    })
}

/// One project's closed usage in one month.
#[derive(Debug, Clone, Default, PartialEq)]
struct Month {
    lines: BTreeMap<LineKey, LineUsage>,
    /// The closed time's extent in the month: the earliest start and the
    /// latest end of its intervals, clipped to the month.
    first_ms: i64,
    last_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Project {
    /// By the month's start.
    months: BTreeMap<i64, Month>,
    /// An interval fell outside the calendar: no totals for this project.
    unbucketed: bool,
    /// How many of the project's closed intervals are summed.
    folded: usize,
}

/// Closed usage summed by project, month and line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    projects: HashMap<String, Project>,
}

impl Totals {
    /// Sums the intervals of `closed` (all of `project`'s closed
    /// intervals, in the order they closed: a list only ever appended to)
    /// not summed yet.
    pub fn catch_up(&mut self, project: &str, closed: &[std::sync::Arc<Interval>]) {
        let folded = self.projects.get(project).map_or(0, |p| p.folded);
        for i in closed.iter().skip(folded) {
            self.add(i);
        }
        if let Some(p) = self.projects.get_mut(project) {
            p.folded = closed.len();
        }
    }

    /// Adds a closed interval (an open one is ignored: it is still
    /// growing).
    pub fn add(&mut self, i: &Interval) {
        let Some(end) = i.end_ms else { return };
        let p = self.projects.entry(i.project_id.clone()).or_default();
        if p.unbucketed {
            return;
        }
        let mut at = i.start_ms;
        while at < end {
            let Some(month) = month_of(at) else {
                p.unbucketed = true;
                p.months.clear();
                return;
            };
            let (from, to) = (at, end.min(month.end_ms));
            let m = p.months.entry(month.start_ms).or_insert_with(|| Month {
                first_ms: from,
                last_ms: to,
                ..Month::default()
            });
            m.first_ms = m.first_ms.min(from);
            m.last_ms = m.last_ms.max(to);
            let ms = to - from;
            match m.lines.get_mut(&LineKey {
                server_id: i.server_id,
                flavor: i.flavor.clone(),
                state: i.state,
            }) {
                Some(line) => line.add(i, ms),
                None => {
                    let line = LineUsage::of(i, ms);
                    m.lines.insert(line.key.clone(), line);
                }
            }
            at = to;
        }
    }

    /// `project`'s closed usage in `period` by line, from the months; `None`
    /// when a month's closed time lies partly inside the period and partly
    /// outside (the caller then sums the intervals).
    pub fn lines(&self, project: &str, period: Period) -> Option<Vec<LineUsage>> {
        let Some(p) = self.projects.get(project) else {
            return Some(Vec::new());
        };
        if p.unbucketed {
            return None;
        }
        let mut out: Vec<LineUsage> = Vec::new();
        // Months that begin before the period may still hold time in it.
        for m in p.months.values() {
            let outside = m.last_ms <= period.start_ms || m.first_ms >= period.end_ms;
            if outside {
                continue;
            }
            let inside = m.first_ms >= period.start_ms && m.last_ms <= period.end_ms;
            if !inside {
                return None;
            }
            out = merge_lines(out, m.lines.values().cloned().collect());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::{BillableState, FlavorSpec};
    use crate::rate::sum_lines;
    use uuid::Uuid;

    const DEC_1: i64 = 1_796_083_200_000; // 2026-12-01T00:00:00Z
    const H: i64 = 3_600_000;

    fn interval(server: u128, state: BillableState, start: i64, end: Option<i64>) -> Interval {
        Interval {
            server_id: Uuid::from_u128(server),
            server_name: format!("s{server}-{start}"),
            project_id: if server % 3 == 0 { "other" } else { "demo" }.into(),
            user_id: "u".into(),
            flavor: FlavorSpec {
                id: format!("{}", server % 2),
                name: format!("f{}", server % 2),
                vcpus: 1,
                ram_mb: 512,
                disk_gb: 1,
                ephemeral_gb: 0,
            },
            host: None,
            state,
            start_ms: start,
            end_ms: end,
        }
    }

    #[test]
    fn months_are_the_calendar_s() {
        let dec = month_of(DEC_1 + 5).unwrap();
        assert_eq!(dec.start_ms, DEC_1);
        assert_eq!(dec.end_ms, DEC_1 + 31 * 24 * H);
        assert_eq!(month_of(DEC_1 - 1).unwrap().end_ms, DEC_1);
        assert_eq!(month_of(0).unwrap().start_ms, 0);
        assert_eq!(month_of(-1).unwrap().end_ms, 0);
        assert!(month_of(i64::MAX).is_none());
    }

    /// Random closed intervals and periods: whenever the totals answer,
    /// they are the lines summed from the intervals themselves.
    #[test]
    fn totals_answer_what_summing_the_intervals_gives() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i64
        };
        for round in 0..200 {
            let mut totals = Totals::default();
            let mut all = Vec::new();
            let base = DEC_1 - 40 * 24 * H;
            for s in 0..(1 + next(12)) {
                let mut at = base + next(80 * 24 * H);
                for _ in 0..(1 + next(5)) {
                    let len = 1 + next(30 * 24 * H);
                    let state = BillableState::ALL[next(3) as usize];
                    let i = interval(s as u128, state, at, Some(at + len));
                    totals.add(&i);
                    all.push(i);
                    at += len;
                }
            }
            let mut answered = 0;
            for _ in 0..50 {
                let period = match next(3) {
                    // A month so far, as the API defaults to.
                    0 => {
                        let m = month_of(base + next(100 * 24 * H)).unwrap();
                        Period::new(m.start_ms, m.end_ms - next(m.end_ms - m.start_ms)).unwrap()
                    }
                    // Whole months.
                    1 => {
                        let a = month_of(base + next(100 * 24 * H)).unwrap();
                        let b = month_of(a.start_ms + next(100 * 24 * H)).unwrap();
                        Period::new(a.start_ms, b.end_ms).unwrap()
                    }
                    _ => {
                        let a = base + next(100 * 24 * H);
                        Period::new(a, a + next(60 * 24 * H)).unwrap()
                    }
                };
                for project in ["demo", "other", "none"] {
                    let Some(fast) = totals.lines(project, period) else {
                        continue;
                    };
                    answered += 1;
                    let mine = all.iter().filter(|i| i.project_id == project);
                    let slow = sum_lines(mine, period, 0);
                    assert_eq!(fast, slow, "round {round}, {project}, {period:?}");
                }
            }
            assert!(answered > 0, "round {round}: the totals never answered");
        }
    }

    #[test]
    fn a_month_partly_inside_the_period_is_not_answered_from_totals() {
        let mut totals = Totals::default();
        totals.add(&interval(
            1,
            BillableState::Running,
            DEC_1 + H,
            Some(DEC_1 + 3 * H),
        ));
        // The month so far, past the interval's end: answered.
        let so_far = Period::new(DEC_1, DEC_1 + 4 * H).unwrap();
        assert_eq!(totals.lines("demo", so_far).unwrap().len(), 1);
        // Cut through the interval: not.
        let cut = Period::new(DEC_1, DEC_1 + 2 * H).unwrap();
        assert!(totals.lines("demo", cut).is_none());
        // An open interval is not a total.
        totals.add(&interval(2, BillableState::Running, DEC_1, None));
        assert_eq!(totals.lines("demo", so_far).unwrap().len(), 1);
    }
}
