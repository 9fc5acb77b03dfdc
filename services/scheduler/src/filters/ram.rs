//! RamFilter: enough RAM under the host's `ram_allocation_ratio` (its own
//! override, else the configured one), counting this scheduler's unanswered
//! decisions.

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope};
use crate::host_state::{HostState, fits};

pub struct RamFilter;

impl Filter for RamFilter {
    fn name(&self) -> &'static str {
        "RamFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        fits(
            host.used_ram_mb(),
            spec.resources.memory_mb,
            host.capacity.memory_mb,
            host.ram_ratio(ctx),
        )
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::Ram)
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
        assert!(
            !RamFilter.host_passes(&h, &test_spec(1, 4_096, 1), &ctx),
            "pending decisions count"
        );
        h.ram_allocation_ratio = Some(2.0);
        assert!(
            RamFilter.host_passes(&h, &test_spec(1, 4_096, 1), &ctx),
            "per-host ratio wins"
        );
    }
}
