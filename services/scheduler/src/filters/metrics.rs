//! MetricsFilter: hosts that report every metric the MetricsWeigher's
//! `weight_setting` names (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct MetricsFilter {
    pub names: Vec<String>,
}

impl MetricsFilter {
    /// From `weight_setting` entries (`name=ratio`).
    pub fn new(setting: &[String]) -> Result<Self, String> {
        let names = crate::weighers::parse_weight_setting(setting)?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        Ok(MetricsFilter { names })
    }
}

impl Filter for MetricsFilter {
    fn name(&self) -> &'static str {
        "MetricsFilter"
    }

    fn host_passes(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        self.names.iter().all(|n| host.metrics.contains_key(n))
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if self.names.is_empty() {
            Scope::All
        } else {
            Scope::Host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn needs_every_weighed_metric() {
        let f = MetricsFilter::new(&["cpu.percent=-1.0".into(), "mem=2".into()]).unwrap();
        let spec = test_spec(1, 1, 1);
        let mut h = test_host("h");
        h.metrics.insert("cpu.percent".into(), 10.0);
        assert!(!f.host_passes(&h, &spec, &Context::default()));
        h.metrics.insert("mem".into(), 1.0);
        assert!(f.host_passes(&h, &spec, &Context::default()));
        assert!(MetricsFilter::new(&["junk".into()]).is_err());
    }
}
