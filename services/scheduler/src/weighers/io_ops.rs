//! IoOpsWeigher: the number of I/O-heavy tasks on the host (decided but
//! unclaimed, claimed and building), `minval` 0. The default multiplier
//! −1.0 prefers lightly loaded hosts; aggregates may override it.

use novalog_schemas::events::SelectHostsRequested;

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;

pub struct IoOpsWeigher {
    pub multiplier: f64,
}

impl Weigher for IoOpsWeigher {
    fn name(&self) -> &'static str {
        "IoOpsWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("io_ops_weight_multiplier")
    }

    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }

    fn weight(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        f64::from(host.num_io_ops())
    }

    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::IoOps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh_one;
    use uuid::Uuid;

    #[test]
    fn prefers_idle_hosts_by_default() {
        let idle = test_host("idle");
        let mut busy = test_host("busy");
        busy.building.insert(Uuid::from_u128(1));
        busy.add_pending(test_spec(1, 1, 1).resources);
        let spec = test_spec(1, 1, 1);
        assert_eq!(
            IoOpsWeigher { multiplier: -1.0 }.weight(&busy, &spec, &Context::default()),
            2.0
        );
        assert_eq!(
            weigh_one(IoOpsWeigher { multiplier: -1.0 }, &[&idle, &busy], &spec),
            vec![0.0, -1.0]
        );
    }
}
