//! ComputeFilter: the host's service is enabled and up (a heartbeat within
//! `service_down_time`), as Nova's servicegroup API judges it.

use novalog_schemas::events::SelectHostsRequested;

use super::{Check, Context, Filter, Scope};
use crate::host_state::HostState;

pub struct ComputeFilter;

impl Filter for ComputeFilter {
    fn name(&self) -> &'static str {
        "ComputeFilter"
    }

    fn host_passes(&self, host: &HostState, _spec: &SelectHostsRequested, ctx: &Context) -> bool {
        host.enabled && host.is_up(ctx)
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Check(Check::Up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn passes_only_enabled_hosts_heard_from_recently() {
        let spec = test_spec(1, 512, 1);
        let mut h = test_host("h");
        let ctx = Context {
            now_ms: h.last_heartbeat_ms + 60_000,
            ..Context::default()
        };
        assert!(ComputeFilter.host_passes(&h, &spec, &ctx));
        let late = Context {
            now_ms: h.last_heartbeat_ms + 60_001,
            ..Context::default()
        };
        assert!(!ComputeFilter.host_passes(&h, &spec, &late));
        h.enabled = false;
        assert!(!ComputeFilter.host_passes(&h, &spec, &ctx));
    }
}
