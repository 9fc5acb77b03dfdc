//! AggregateNumInstancesFilter: NumInstancesFilter with the limit from the
//! host's aggregates' `max_instances_per_host` metadata (the smallest, if
//! several), else the configured one; a value that is not an integer falls
//! back to the configured one (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope, aggregate_int_min};
use crate::host_state::HostState;

pub struct AggregateNumInstancesFilter {
    pub max_instances_per_host: u32,
}

impl Filter for AggregateNumInstancesFilter {
    fn name(&self) -> &'static str {
        "AggregateNumInstancesFilter"
    }

    fn host_passes(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        i64::from(host.num_instances()) < self.class_limit(host)
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::ClassMaxInstances)
    }

    fn class_limit(&self, host: &HostState) -> i64 {
        aggregate_int_min(
            host,
            "max_instances_per_host",
            i64::from(self.max_instances_per_host),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};

    #[test]
    fn the_aggregate_limit_overrides_the_configured_one() {
        let f = AggregateNumInstancesFilter {
            max_instances_per_host: 4,
        };
        let spec = test_spec(1, 1, 1);
        let ctx = Context::default();
        let mut h = test_host("h");
        h.usage.instances = 3;
        assert!(f.host_passes(&h, &spec, &ctx), "3 of the configured 4");
        h.aggregates = vec![aggregate("small", &[("max_instances_per_host", "3")])];
        assert!(!f.host_passes(&h, &spec, &ctx), "3 of the aggregate's 3");
        h.aggregates = vec![aggregate("big", &[("max_instances_per_host", "10")])];
        assert!(
            f.host_passes(&h, &spec, &ctx),
            "an aggregate may raise the limit"
        );
        h.aggregates = vec![aggregate("bad", &[("max_instances_per_host", "many")])];
        assert_eq!(f.class_limit(&h), 4, "not an integer: the configured value");
        h.aggregates = vec![aggregate("closed", &[("max_instances_per_host", "-1")])];
        h.usage.instances = 0;
        assert!(
            !f.host_passes(&h, &spec, &ctx),
            "a negative limit closes the host"
        );
    }
}
