//! DifferentHostFilter: with the `different_host` hint (instance ids), only
//! hosts holding none of those instances (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;

use super::same_host::holds_any;
use super::{Context, Filter, Scope, hint};
use crate::host_state::HostState;

pub struct DifferentHostFilter;

impl Filter for DifferentHostFilter {
    fn name(&self) -> &'static str {
        "DifferentHostFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        !holds_any(host, hint(spec, "different_host"))
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if hint(spec, "different_host").is_empty() {
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
    use uuid::Uuid;

    #[test]
    fn avoids_hosts_with_a_named_instance() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let mut a = test_host("a");
        a.instances.insert(Uuid::from_u128(1));
        let b = test_host("b");
        assert!(DifferentHostFilter.host_passes(&a, &spec, &ctx), "no hint");
        spec.scheduler_hints.insert(
            "different_host".into(),
            vec![Uuid::from_u128(1).to_string()],
        );
        assert!(!DifferentHostFilter.host_passes(&a, &spec, &ctx));
        assert!(DifferentHostFilter.host_passes(&b, &spec, &ctx));
    }
}
