//! AggregateIoOpsFilter: IoOpsFilter with the limit from the host's
//! aggregates' `max_io_ops_per_host` metadata (the smallest, if several),
//! else the configured one; a value that is not an integer falls back to
//! the configured one (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope, aggregate_int_min};
use crate::host_state::HostState;

pub struct AggregateIoOpsFilter {
    pub max_io_ops_per_host: u32,
}

impl Filter for AggregateIoOpsFilter {
    fn name(&self) -> &'static str {
        "AggregateIoOpsFilter"
    }

    fn host_passes(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        i64::from(host.num_io_ops()) < self.class_limit(host)
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::ClassMaxIoOps)
    }

    fn class_limit(&self, host: &HostState) -> i64 {
        aggregate_int_min(
            host,
            "max_io_ops_per_host",
            i64::from(self.max_io_ops_per_host),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};
    use uuid::Uuid;

    #[test]
    fn the_aggregate_limit_overrides_the_configured_one() {
        let f = AggregateIoOpsFilter {
            max_io_ops_per_host: 2,
        };
        let spec = test_spec(1, 1, 1);
        let ctx = Context::default();
        let mut h = test_host("h");
        h.building.insert(Uuid::from_u128(1));
        h.building.insert(Uuid::from_u128(2));
        assert!(!f.host_passes(&h, &spec, &ctx), "2 of the configured 2");
        h.aggregates = vec![
            aggregate("a", &[("max_io_ops_per_host", "5")]),
            aggregate("b", &[("max_io_ops_per_host", " 3 ")]),
        ];
        assert!(
            f.host_passes(&h, &spec, &ctx),
            "the smallest aggregate value, 3"
        );
        h.building.insert(Uuid::from_u128(3));
        assert!(!f.host_passes(&h, &spec, &ctx));
        h.aggregates
            .push(aggregate("c", &[("max_io_ops_per_host", "2.5")]));
        assert_eq!(f.class_limit(&h), 2, "not an integer: the configured value");
    }
}
