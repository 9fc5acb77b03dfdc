//! RetryFilter: skips hosts this request has already tried (Nova's
//! `RetryFilter`, from the days before alternates: the request carries the
//! hosts of earlier attempts in `ignore_hosts`).

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct RetryFilter;

impl Filter for RetryFilter {
    fn name(&self) -> &'static str {
        "RetryFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        !spec.ignore_hosts.iter().any(|h| h == &host.name)
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if spec.ignore_hosts.is_empty() {
            Scope::All
        } else {
            Scope::Host
        }
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
        assert_eq!(RetryFilter.scope(&spec, &Context::default()), Scope::All);
        spec.ignore_hosts = vec!["a".into()];
        assert!(!RetryFilter.host_passes(&test_host("a"), &spec, &Context::default()));
        assert!(RetryFilter.host_passes(&test_host("b"), &spec, &Context::default()));
    }
}
