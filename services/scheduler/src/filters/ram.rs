//! RamFilter: enough RAM under `ram_allocation_ratio`.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter};
use crate::host_state::HostState;

pub struct RamFilter;

impl Filter for RamFilter {
    fn name(&self) -> &'static str {
        "RamFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        let limit = host.capacity.memory_mb as f64 * ctx.ram_allocation_ratio;
        host.used_ram_mb() as f64 + spec.resources.memory_mb as f64 <= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn overcommits_ram_by_the_ratio() {
        let mut h = test_host("h"); // 16 GiB, ratio 1.5 → 24 GiB
        h.usage.memory_mb_used = 20_480;
        let ctx = Context::default();
        assert!(RamFilter.host_passes(&h, &test_spec(1, 4_096, 1), &ctx));
        assert!(!RamFilter.host_passes(&h, &test_spec(1, 4_097, 1), &ctx));
        h.add_pending(test_spec(1, 1, 0).resources);
        assert!(!RamFilter.host_passes(&h, &test_spec(1, 4_096, 1), &ctx), "pending decisions count");
    }
}
