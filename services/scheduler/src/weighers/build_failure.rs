//! BuildFailureWeigher: the host's failed builds since its last successful
//! one, with Nova's negated multiplier (`build_failure_weight_multiplier`,
//! 1,000,000 by default, so any failure outweighs every other weigher);
//! aggregates may override it.

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct BuildFailureWeigher {
    /// As configured (positive); applied negated.
    pub multiplier: f64,
}

const KEY: &str = "build_failure_weight_multiplier";

impl Weigher for BuildFailureWeigher {
    fn name(&self) -> &'static str {
        "BuildFailureWeigher"
    }

    fn multiplier(&self) -> f64 {
        -self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some(KEY)
    }

    fn host_multiplier(&self, host: &HostState) -> f64 {
        -host.aggregate_min(KEY, self.multiplier)
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        f64::from(host.failed_builds)
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::FailedBuilds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};
    use crate::weighers::weigh_one;

    #[test]
    fn failures_push_a_host_down() {
        let ok = test_host("ok");
        let mut bad = test_host("bad");
        bad.failed_builds = 3;
        let spec = test_spec(1, 1, 1);
        let w = weigh_one(BuildFailureWeigher { multiplier: 1e6 }, &[&ok, &bad], &spec);
        assert_eq!(w, vec![0.0, -1e6]);
        bad.aggregates = vec![aggregate("lenient", &[(KEY, "10")])];
        let w = weigh_one(BuildFailureWeigher { multiplier: 1e6 }, &[&ok, &bad], &spec);
        assert_eq!(w, vec![0.0, -10.0], "aggregate override, still negated");
    }
}
