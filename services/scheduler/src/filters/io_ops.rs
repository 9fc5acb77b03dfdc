//! IoOpsFilter: hosts with fewer than `max_io_ops_per_host` instances in an
//! I/O-heavy task (here: decided but unclaimed, or claimed and building).
//! Nova's filter of the same name.

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope};
use crate::host_state::HostState;

pub struct IoOpsFilter {
    pub max_io_ops_per_host: u32,
}

impl Filter for IoOpsFilter {
    fn name(&self) -> &'static str {
        "IoOpsFilter"
    }

    fn host_passes(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        host.num_io_ops() < self.max_io_ops_per_host
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::MaxIoOps(self.max_io_ops_per_host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use uuid::Uuid;

    #[test]
    fn refuses_busy_hosts() {
        let f = IoOpsFilter {
            max_io_ops_per_host: 2,
        };
        let spec = test_spec(1, 1, 1);
        let mut h = test_host("h");
        h.building.insert(Uuid::from_u128(1));
        assert!(f.host_passes(&h, &spec, &Context::default()));
        h.add_pending(spec.resources);
        assert!(
            !f.host_passes(&h, &spec, &Context::default()),
            "building + pending = 2"
        );
    }
}
