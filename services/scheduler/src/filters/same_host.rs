//! SameHostFilter: with the `same_host` hint (instance ids), only hosts
//! holding at least one of those instances (Nova's filter of the same name).

use novalog_schemas::events::SelectHostsRequested;
use uuid::Uuid;

use super::{Context, Filter, Scope, hint};
use crate::host_state::HostState;

pub struct SameHostFilter;

/// Whether the host holds any of the instances named in `ids`; ids that are
/// not UUIDs name no instance.
pub(crate) fn holds_any(host: &HostState, ids: &[String]) -> bool {
    ids.iter()
        .filter_map(|id| Uuid::parse_str(id.trim()).ok())
        .any(|id| host.instances.contains(&id))
}

impl Filter for SameHostFilter {
    fn name(&self) -> &'static str {
        "SameHostFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let ids = hint(spec, "same_host");
        ids.is_empty() || holds_any(host, ids)
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if hint(spec, "same_host").is_empty() {
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
    fn only_hosts_with_a_named_instance() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let mut a = test_host("a");
        a.instances.insert(Uuid::from_u128(1));
        let b = test_host("b");
        assert!(SameHostFilter.host_passes(&b, &spec, &ctx), "no hint");
        spec.scheduler_hints.insert(
            "same_host".into(),
            vec![
                Uuid::from_u128(1).to_string(),
                Uuid::from_u128(2).to_string(),
            ],
        );
        assert!(SameHostFilter.host_passes(&a, &spec, &ctx));
        assert!(!SameHostFilter.host_passes(&b, &spec, &ctx));
    }
}
