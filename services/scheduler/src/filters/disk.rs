//! DiskFilter: enough disk under `disk_allocation_ratio`.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter};
use crate::host_state::HostState;

pub struct DiskFilter;

impl Filter for DiskFilter {
    fn name(&self) -> &'static str {
        "DiskFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        let limit = host.capacity.disk_gb as f64 * ctx.disk_allocation_ratio;
        (host.used_disk_gb() + spec.resources.disk_gb) as f64 <= limit
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
    }
}
