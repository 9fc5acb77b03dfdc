//! CoreFilter: enough vCPUs under the host's `cpu_allocation_ratio` (its own
//! override, else the configured one; Nova's old CoreFilter, now placement's
//! VCPU inventory).

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope};
use crate::host_state::{HostState, fits};

pub struct CoreFilter;

impl Filter for CoreFilter {
    fn name(&self) -> &'static str {
        "CoreFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        fits(
            host.used_vcpus(),
            u64::from(spec.resources.vcpus),
            u64::from(host.capacity.vcpus),
            host.cpu_ratio(ctx),
        )
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::Core)
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
        h.cpu_allocation_ratio = Some(15.0); // per-host override: 120
        assert!(!CoreFilter.host_passes(&h, &test_spec(1, 1, 1), &ctx));
    }
}
