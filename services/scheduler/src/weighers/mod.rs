//! Host weighers: each returns a raw metric; [`weigh`] normalises each
//! weigher's metrics to 0..1 across the candidates, multiplies by the
//! weigher's multiplier and sums, as Nova's `nova/weights.py` does.

mod ram;

use novalog_schemas::events::SelectHostsRequested;

use crate::filters::Context;
use crate::host_state::HostState;

pub use ram::RamWeigher;

pub trait Weigher: Send + Sync {
    fn name(&self) -> &'static str;
    fn multiplier(&self) -> f64;
    /// The raw metric; larger is better before the multiplier.
    fn weight(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> f64;
}

/// Builds the weighers named in `names`.
pub fn by_names(names: &[String], ram_multiplier: f64) -> Result<Vec<Box<dyn Weigher>>, String> {
    names
        .iter()
        .map(|n| -> Result<Box<dyn Weigher>, String> {
            match n.as_str() {
                "RAMWeigher" | "RamWeigher" => Ok(Box::new(RamWeigher {
                    multiplier: ram_multiplier,
                })),
                other => Err(format!("unknown weigher {other:?}")),
            }
        })
        .collect()
}

/// Min-max normalisation to 0..1; all-equal values normalise to 0.
pub fn normalize(values: &mut [f64]) {
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let range = max - min;
    for v in values.iter_mut() {
        *v = if range > 0.0 { (*v - min) / range } else { 0.0 };
    }
}

/// Total weight of each candidate, in the candidates' order.
pub fn weigh(
    weighers: &[Box<dyn Weigher>],
    hosts: &[&HostState],
    spec: &SelectHostsRequested,
    ctx: &Context,
) -> Vec<f64> {
    let mut total = vec![0.0; hosts.len()];
    let mut raw = vec![0.0; hosts.len()];
    for w in weighers {
        for (r, h) in raw.iter_mut().zip(hosts) {
            *r = w.weight(h, spec, ctx);
        }
        normalize(&mut raw);
        for (t, r) in total.iter_mut().zip(&raw) {
            *t += w.multiplier() * r;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_unit_range() {
        let mut v = vec![10.0, 20.0, 15.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.0, 1.0, 0.5]);
        let mut same = vec![3.0, 3.0];
        normalize(&mut same);
        assert_eq!(same, vec![0.0, 0.0]);
    }
}
