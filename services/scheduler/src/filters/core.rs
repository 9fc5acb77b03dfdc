//! CoreFilter: enough vCPUs under `cpu_allocation_ratio`.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter};
use crate::host_state::HostState;

pub struct CoreFilter;

impl Filter for CoreFilter {
    fn name(&self) -> &'static str {
        "CoreFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        let limit = f64::from(host.capacity.vcpus) * ctx.cpu_allocation_ratio;
        (host.used_vcpus() + u64::from(spec.resources.vcpus)) as f64 <= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn overcommits_cpu_by_the_ratio() {
        let mut h = test_host("h"); // 8 vcpus × 16 = 128
        h.usage.vcpus_used = 120;
        let ctx = Context::default();
        assert!(CoreFilter.host_passes(&h, &test_spec(8, 1, 1), &ctx));
        assert!(!CoreFilter.host_passes(&h, &test_spec(9, 1, 1), &ctx));
    }
}
