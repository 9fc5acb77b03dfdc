//! DiskWeigher: free disk in MB (without overcommit), `minval` 0. Positive
//! `disk_weight_multiplier` spreads, negative stacks; aggregates may
//! override it.

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct DiskWeigher {
    pub multiplier: f64,
}

impl Weigher for DiskWeigher {
    fn name(&self) -> &'static str {
        "DiskWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("disk_weight_multiplier")
    }

    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        host.free_disk_mb()
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::FreeDiskMb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh_one;

    #[test]
    fn weighs_free_disk() {
        let empty = test_host("empty"); // 100 GB
        let mut busy = test_host("busy");
        busy.usage.disk_gb_used = 75;
        let spec = test_spec(1, 1, 1);
        assert_eq!(
            DiskWeigher { multiplier: 1.0 }.weight(&busy, &spec, &Context::default()),
            25.0 * 1024.0
        );
        assert_eq!(
            weigh_one(DiskWeigher { multiplier: 2.0 }, &[&empty, &busy], &spec),
            vec![2.0, 0.5]
        );
    }
}
