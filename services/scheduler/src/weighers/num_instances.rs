//! NumInstancesWeigher: the number of instances on the host (including
//! unanswered decisions). Multiplier 0.0 by default (off); negative prefers
//! emptier hosts, positive packs; aggregates may override it.

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct NumInstancesWeigher {
    pub multiplier: f64,
}

impl Weigher for NumInstancesWeigher {
    fn name(&self) -> &'static str {
        "NumInstancesWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("num_instances_weight_multiplier")
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        f64::from(host.num_instances())
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::NumInstances
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh_one;

    #[test]
    fn normalises_between_fewest_and_most() {
        let (mut a, mut b, mut c) = (test_host("a"), test_host("b"), test_host("c"));
        a.usage.instances = 2;
        b.usage.instances = 4;
        c.usage.instances = 6;
        let w = weigh_one(
            NumInstancesWeigher { multiplier: -1.0 },
            &[&a, &b, &c],
            &test_spec(1, 1, 1),
        );
        assert_eq!(w, vec![0.0, -0.5, -1.0], "no minval: from the fewest");
    }
}
