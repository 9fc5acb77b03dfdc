//! NumInstancesFilter: hosts with fewer than `max_instances_per_host`
//! instances, counting this scheduler's unanswered decisions (Nova's filter
//! of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope};
use crate::host_state::HostState;

pub struct NumInstancesFilter {
    pub max_instances_per_host: u32,
}

impl Filter for NumInstancesFilter {
    fn name(&self) -> &'static str {
        "NumInstancesFilter"
    }

    fn host_passes(&self, host: &HostState, _spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        host.num_instances() < self.max_instances_per_host
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::MaxInstances(self.max_instances_per_host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn refuses_full_hosts() {
        let f = NumInstancesFilter {
            max_instances_per_host: 2,
        };
        let spec = test_spec(1, 1, 1);
        let mut h = test_host("h");
        h.usage.instances = 1;
        assert!(f.host_passes(&h, &spec, &Context::default()));
        h.add_pending(spec.resources);
        assert!(!f.host_passes(&h, &spec, &Context::default()));
    }
}
