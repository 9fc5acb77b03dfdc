//! Billing periods: half-open windows `[start_ms, end_ms)` of event time.
//!
//! Half-open and in integer milliseconds, so a boundary belongs to exactly
//! one side and two adjacent periods add up to the one they split, to the
//! millisecond and (since charges are linear in time) to the last exact
//! unit of money.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Why a period was refused (a 400 at the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("Invalid start time. The start time cannot occur after the end time.")]
    EndBeforeStart,
    #[error(
        "Invalid input received: {0:?} is not a valid time (ISO 8601, e.g. 2026-12-01T00:00:00)"
    )]
    Malformed(String),
}

impl Period {
    /// `[start, end)`; `end` before `start` is refused, an empty period
    /// (`start == end`) is allowed and bills nothing.
    pub fn new(start_ms: i64, end_ms: i64) -> Result<Self, PeriodError> {
        if end_ms < start_ms {
            return Err(PeriodError::EndBeforeStart);
        }
        Ok(Period { start_ms, end_ms })
    }

    /// Splits at `at` (clamped into the period): the two halves cover the
    /// period exactly.
    pub fn split(self, at: i64) -> (Period, Period) {
        let at = at.clamp(self.start_ms, self.end_ms);
        (
            Period {
                start_ms: self.start_ms,
                end_ms: at,
            },
            Period {
                start_ms: at,
                end_ms: self.end_ms,
            },
        )
    }

    /// The period of length `len_ms` (aligned to the epoch) holding `at`.
    pub fn containing(at: i64, len_ms: i64) -> Period {
        let start = at.div_euclid(len_ms) * len_ms;
        Period {
            start_ms: start,
            end_ms: start + len_ms,
        }
    }
}

/// Parses a time as Nova's simple-tenant-usage accepts it
/// (`2026-12-01T00:00:00`, with optional fraction and optional `Z` or
/// offset; a bare date means its midnight), in UTC, to epoch ms.
pub fn parse_time(s: &str) -> Result<i64, PeriodError> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let bad = || PeriodError::Malformed(s.to_owned());
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc()
            .timestamp_millis());
    }
    Err(bad())
}

/// Epoch ms as Nova prints times in usage (`2026-12-01T00:00:00.000000`).
pub fn format_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_nova_takes_them() {
        let midnight = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        for s in [
            "2026-12-01T00:00:00",
            "2026-12-01T00:00:00.000000",
            "2026-12-01T00:00:00Z",
            "2026-12-01T01:00:00+01:00",
            "2026-12-01 00:00:00",
            "2026-12-01",
        ] {
            assert_eq!(parse_time(s), Ok(midnight), "{s}");
        }
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00",
            "2026-12-01T25:00:00",
        ] {
            assert!(
                matches!(parse_time(s), Err(PeriodError::Malformed(_))),
                "{s}"
            );
        }
        assert_eq!(format_time(midnight + 1), "2026-12-01T00:00:00.001000");
    }

    #[test]
    fn end_before_start_is_refused() {
        assert_eq!(Period::new(2, 1), Err(PeriodError::EndBeforeStart));
        assert!(Period::new(1, 1).is_ok());
    }

    #[test]
    fn periods_align_to_the_epoch_and_split_without_overlap() {
        let p = Period::containing(3_600_000 * 5 + 17, 3_600_000);
        assert_eq!(
            p,
            Period {
                start_ms: 18_000_000,
                end_ms: 21_600_000
            }
        );
        let (a, b) = p.split(19_000_000);
        assert_eq!((a.end_ms, b.start_ms), (19_000_000, 19_000_000));
        assert_eq!(p.split(0).0.end_ms, p.start_ms, "clamped");
        assert_eq!(Period::containing(-1, 10).start_ms, -10);
    }
}
