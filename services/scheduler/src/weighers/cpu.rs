//! CPUWeigher: vCPUs left under the host's `cpu_allocation_ratio`
//! (`total × ratio − used`), `minval` 0. Positive `cpu_weight_multiplier`
//! spreads, negative stacks; aggregates may override it.

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct CpuWeigher {
    pub multiplier: f64,
}

impl Weigher for CpuWeigher {
    fn name(&self) -> &'static str {
        "CPUWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("cpu_weight_multiplier")
    }

    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, ctx: &Context) -> f64 {
        host.free_vcpus(ctx)
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::FreeVcpus
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh_one;

    #[test]
    fn weighs_free_overcommitted_vcpus() {
        let empty = test_host("empty"); // 8 × 16 = 128
        let mut busy = test_host("busy");
        busy.usage.vcpus_used = 96;
        let spec = test_spec(1, 1, 1);
        assert_eq!(
            CpuWeigher { multiplier: 1.0 }.weight(&busy, &spec, &Context::default()),
            32.0
        );
        let w = weigh_one(CpuWeigher { multiplier: 1.0 }, &[&empty, &busy], &spec);
        assert_eq!(w, vec![1.0, 0.25]);
        let w = weigh_one(CpuWeigher { multiplier: -1.0 }, &[&empty, &busy], &spec);
        assert!(w[1] > w[0], "negative stacks");
    }
}
