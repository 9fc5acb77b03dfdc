//! DiskFilter: enough disk (root + ephemeral + swap) under the host's
//! `disk_allocation_ratio` (its own override, else the configured one).

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope};
use crate::host_state::{HostState, fits};

pub struct DiskFilter;

impl Filter for DiskFilter {
    fn name(&self) -> &'static str {
        "DiskFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        fits(
            host.used_disk_gb(),
            spec.resources.disk_gb,
            host.capacity.disk_gb,
            host.disk_ratio(ctx),
        )
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::Disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn refuses_beyond_disk() {
        let mut h = test_host("h"); // 100 GB, ratio 1.0
        h.usage.disk_gb_used = 80;
        let ctx = Context::default();
        assert!(DiskFilter.host_passes(&h, &test_spec(1, 1, 20), &ctx));
        assert!(!DiskFilter.host_passes(&h, &test_spec(1, 1, 21), &ctx));
        h.disk_allocation_ratio = Some(2.0);
        assert!(DiskFilter.host_passes(&h, &test_spec(1, 1, 120), &ctx));
    }
}
