//! RAMWeigher: free RAM (without overcommit), `minval` 0. A positive
//! `ram_weight_multiplier` spreads instances across hosts, a negative one
//! stacks them; aggregates may override it with `ram_weight_multiplier`.

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct RamWeigher {
    pub multiplier: f64,
}

impl Weigher for RamWeigher {
    fn name(&self) -> &'static str {
        "RAMWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("ram_weight_multiplier")
    }

    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        host.free_ram_mb()
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::FreeRam
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};
    use crate::weighers::weigh_one;

    #[test]
    fn positive_spreads_negative_stacks() {
        let empty = test_host("empty");
        let mut busy = test_host("busy");
        busy.usage.memory_mb_used = 8_192;
        let hosts = [&empty, &busy];
        let spec = test_spec(1, 512, 1);
        let w = weigh_one(RamWeigher { multiplier: 1.0 }, &hosts, &spec);
        assert_eq!(w, vec![1.0, 0.5], "normalised from 0 to the most free");
        let w = weigh_one(RamWeigher { multiplier: -1.0 }, &hosts, &spec);
        assert!(w[1] > w[0], "stacking prefers the fuller host");
    }

    #[test]
    fn aggregate_overrides_the_multiplier() {
        let empty = test_host("empty");
        let mut busy = test_host("busy");
        busy.usage.memory_mb_used = 8_192;
        busy.aggregates = vec![aggregate("stack", &[("ram_weight_multiplier", "3.0")])];
        let w = weigh_one(
            RamWeigher { multiplier: 1.0 },
            &[&empty, &busy],
            &test_spec(1, 1, 1),
        );
        assert_eq!(w, vec![1.0, 1.5]);
    }
}
