//! MetricsWeigher: `Σ metric × ratio` over `weight_setting` (nova.conf
//! `[metrics] weight_setting = name1=1.0, name2=-1.0`), times
//! `metrics_weight_multiplier` (aggregates may override it). A host lacking
//! a weighed metric gets `weight_of_unavailable` (Nova with `required =
//! False`; Nova's default raises instead — pair with MetricsFilter to keep
//! such hosts out).

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct MetricsWeigher {
    pub setting: Vec<(String, f64)>,
    pub multiplier: f64,
    pub weight_of_unavailable: f64,
}

/// Parses `name=ratio` entries (each entry may itself hold several,
/// comma separated, as nova.conf writes them).
pub fn parse_weight_setting(entries: &[String]) -> Result<Vec<(String, f64)>, String> {
    entries
        .iter()
        .flat_map(|e| e.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, ratio) = e
                .split_once('=')
                .ok_or_else(|| format!("metrics weight_setting {e:?} is not name=ratio"))?;
            let ratio = ratio
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("metrics weight_setting {e:?}: ratio is not a number"))?;
            Ok((name.trim().to_owned(), ratio))
        })
        .collect()
}

impl Weigher for MetricsWeigher {
    fn name(&self) -> &'static str {
        "MetricsWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("metrics_weight_multiplier")
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        let mut value = 0.0;
        for (name, ratio) in &self.setting {
            match host.metrics.get(name) {
                Some(v) => value += v * ratio,
                None if ratio * self.host_multiplier(host) != 0.0 => {
                    return self.weight_of_unavailable;
                }
                None => {}
            }
        }
        value
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        if self.setting.is_empty() {
            Feature::Zero
        } else {
            Feature::PerHost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh_one;

    #[test]
    fn weighted_sum_and_unavailable() {
        let w = MetricsWeigher {
            setting: parse_weight_setting(&["cpu.percent=-1.0, mem.free=0.5".into()]).unwrap(),
            multiplier: 1.0,
            weight_of_unavailable: -10_000.0,
        };
        let spec = test_spec(1, 1, 1);
        let ctx = Context::default();
        let mut a = test_host("a");
        a.metrics.insert("cpu.percent".into(), 20.0);
        a.metrics.insert("mem.free".into(), 100.0);
        assert_eq!(w.weight(&a, &spec, &ctx), 30.0);
        let mut b = test_host("b");
        b.metrics.insert("cpu.percent".into(), 80.0);
        assert_eq!(w.weight(&b, &spec, &ctx), -10_000.0);
        assert_eq!(weigh_one(w, &[&a, &b], &spec), vec![1.0, 0.0]);
        assert!(parse_weight_setting(&["x=abc".into()]).is_err());
    }
}
