//! Exact money: prices as integer micro-units, charges as exact fractions
//! of a currency unit, rounded once, where an amount is shown.
//!
//! A charge is `price × multiplier × quantity × milliseconds`; every factor
//! is an integer in its own unit, so the product is an integer in units of
//! [`Amount::DENOMINATOR`]ths of a currency unit. Sums of amounts are exact
//! and associative: a period's amount is the sum of its parts to the last
//! unit, whichever way it is split.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Micro-units per unit: prices and multipliers have at most 6 decimals.
pub const MICRO: i128 = 1_000_000;
/// Milliseconds per hour: prices are hourly, usage is metered in ms.
pub const MS_PER_HOUR: i128 = 3_600_000;
/// MiB per GiB: RAM is priced per GiB and flavors give it in MiB.
pub const MIB_PER_GIB: i128 = 1024;

/// Why a price does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{what}: {value:?} is not a decimal number with at most 6 decimal places")]
    NotDecimal { what: String, value: String },
    #[error("{what}: {value:?} is too large")]
    TooLarge { what: String, value: String },
    #[error("rounding {0:?} is not one of half_even, half_up, up, down")]
    Rounding(String),
    #[error("decimals {0} is more than 6")]
    Decimals(u32),
    #[error("period_seconds must be at least 1")]
    Period,
    #[error("unknown billable state {0:?} in state_multipliers")]
    State(String),
    #[error("currency must not be empty")]
    Currency,
}

/// A non-negative decimal with at most 6 places, as integer micro-units
/// (`"0.0125"` is 12,500).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Micros(pub i64);

impl Micros {
    pub const ONE: Micros = Micros(1_000_000);
    pub const ZERO: Micros = Micros(0);

    /// Parses `digits[.digits]`; `what` names the option in the error.
    pub fn parse(what: &str, value: &str) -> Result<Micros, PriceError> {
        let bad = || PriceError::NotDecimal {
            what: what.to_owned(),
            value: value.to_owned(),
        };
        let (int, frac) = match value.split_once('.') {
            Some((i, f)) => (i, f),
            None => (value, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits(int)
            || !digits(frac)
            || frac.len() > 6
            || (value.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        let too_large = || PriceError::TooLarge {
            what: what.to_owned(),
            value: value.to_owned(),
        };
        let int: i64 = int.parse().map_err(|_| too_large())?;
        let frac: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
        int.checked_mul(1_000_000)
            .and_then(|i| i.checked_add(frac))
            .map(Micros)
            .ok_or_else(too_large)
    }
}

impl fmt::Display for Micros {
    /// The shortest exact decimal (`0.0125`, `1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if frac == 0 {
            return write!(f, "{int}");
        }
        let frac = format!("{frac:06}");
        write!(f, "{int}.{}", frac.trim_end_matches('0'))
    }
}

/// An exact amount of money, in [`Amount::DENOMINATOR`]ths of a unit.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Amount(pub i128);

impl Amount {
    /// Price (micro) × multiplier (micro) × ms-per-hour × MiB-per-GiB: the
    /// unit in which `hourly rate × multiplier × ms` is an integer.
    pub const DENOMINATOR: i128 = MICRO * MICRO * MS_PER_HOUR * MIB_PER_GIB;

    /// Rounds to `decimals` places by `rule`: the amount a bill shows.
    pub fn round(self, decimals: u32, rule: Rounding) -> Rounded {
        let scale = 10i128.pow(decimals);
        // n / d is the amount in minor units; both are non-negative here,
        // the sign is carried apart so the rules are symmetric.
        let (neg, n) = (self.0 < 0, self.0.abs() * scale);
        let d = Self::DENOMINATOR;
        let (q, r) = (n / d, n % d);
        let up = match rule {
            Rounding::Down => false,
            Rounding::Up => r > 0,
            Rounding::HalfUp => 2 * r >= d,
            Rounding::HalfEven => 2 * r > d || (2 * r == d && q % 2 == 1),
        };
        let minor = q + i128::from(up);
        Rounded {
            minor: if neg { -minor } else { minor },
            decimals,
        }
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, o: Amount) -> Amount {
        Amount(self.0 + o.0)
    }
}

impl std::ops::AddAssign for Amount {
    fn add_assign(&mut self, o: Amount) {
        self.0 += o.0;
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount(0), |a, b| a + b)
    }
}

/// How an exact amount becomes a shown one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rounding {
    /// Banker's rounding: a half goes to the even neighbour.
    HalfEven,
    /// A half goes away from zero.
    HalfUp,
    /// Any fraction goes away from zero.
    Up,
    /// Any fraction is dropped.
    Down,
}

impl Rounding {
    /// The name `parse` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::HalfEven => "half_even",
            Rounding::HalfUp => "half_up",
            Rounding::Up => "up",
            Rounding::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Result<Rounding, PriceError> {
        Ok(match s {
            "half_even" => Rounding::HalfEven,
            "half_up" => Rounding::HalfUp,
            "up" => Rounding::Up,
            "down" => Rounding::Down,
            _ => return Err(PriceError::Rounding(s.to_owned())),
        })
    }
}

/// An amount rounded to the currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rounded {
    /// In minor units (cents for 2 decimals).
    pub minor: i128,
    pub decimals: u32,
}

impl fmt::Display for Rounded {
    /// `12.30` for 1230 minor units at 2 decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let m = self.minor.abs();
        if self.decimals == 0 {
            return write!(f, "{sign}{m}");
        }
        let scale = 10i128.pow(self.decimals);
        write!(
            f,
            "{sign}{}.{:0width$}",
            m / scale,
            m % scale,
            width = self.decimals as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_or_not_at_all() {
        assert_eq!(Micros::parse("p", "0.0125"), Ok(Micros(12_500)));
        assert_eq!(Micros::parse("p", "3"), Ok(Micros(3_000_000)));
        assert_eq!(Micros::parse("p", "1.000001"), Ok(Micros(1_000_001)));
        for bad in ["", ".5", "1.", "-1", "1e3", "0.0000001", "1,5", " 1", "0x1"] {
            assert!(Micros::parse("p", bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            Micros::parse("p", "99999999999999999999"),
            Err(PriceError::TooLarge { .. })
        ));
        assert_eq!(Micros(12_500).to_string(), "0.0125");
        assert_eq!(Micros(2_000_000).to_string(), "2");
    }

    fn cents(amount_in_hundredths_of_a_cent: i128, rule: Rounding) -> String {
        // 1/100 of a cent, expressed in the exact unit.
        let a = Amount(amount_in_hundredths_of_a_cent * Amount::DENOMINATOR / 10_000);
        a.round(2, rule).to_string()
    }

    #[test]
    fn each_rounding_rule_rounds_as_named() {
        // 0.125 (12.5 cents), 0.135, 0.1201, 0.1299
        assert_eq!(cents(1250, Rounding::HalfEven), "0.12");
        assert_eq!(cents(1350, Rounding::HalfEven), "0.14");
        assert_eq!(cents(1250, Rounding::HalfUp), "0.13");
        assert_eq!(cents(1249, Rounding::HalfUp), "0.12");
        assert_eq!(cents(1201, Rounding::Up), "0.13");
        assert_eq!(cents(1299, Rounding::Down), "0.12");
        assert_eq!(cents(1200, Rounding::Up), "0.12");
        assert_eq!(cents(-1250, Rounding::HalfUp), "-0.13");
        assert_eq!(Amount(0).round(0, Rounding::Up).to_string(), "0");
        assert_eq!(
            Amount(5 * Amount::DENOMINATOR)
                .round(3, Rounding::Down)
                .to_string(),
            "5.000"
        );
    }
}
