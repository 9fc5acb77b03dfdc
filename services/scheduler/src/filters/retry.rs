//! RetryFilter: skip hosts this request has already tried.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter};
use crate::host_state::HostState;

pub struct RetryFilter;

impl Filter for RetryFilter {
    fn name(&self) -> &'static str {
        "RetryFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        !spec.ignore_hosts.iter().any(|h| h == &host.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn skips_tried_hosts() {
        let mut spec = test_spec(1, 1, 1);
        spec.ignore_hosts = vec!["a".into()];
        assert!(!RetryFilter.host_passes(&test_host("a"), &spec, &Context::default()));
        assert!(RetryFilter.host_passes(&test_host("b"), &spec, &Context::default()));
    }
}
