//! ServerGroupAntiAffinityFilter: for a group with the `anti-affinity`
//! policy, hosts with fewer than `max_server_per_host` (default 1) of the
//! group's members. A host already holding the instance itself passes (a
//! move may consider its source). Nova's filter of the same name.

use novalog_schemas::events::{SelectHostsRequested, ServerGroupPolicy};

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct ServerGroupAntiAffinityFilter;

impl Filter for ServerGroupAntiAffinityFilter {
    fn name(&self) -> &'static str {
        "ServerGroupAntiAffinityFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let Some(g) = spec
            .server_group
            .as_ref()
            .filter(|g| g.policy == ServerGroupPolicy::AntiAffinity)
        else {
            return true;
        };
        if host.instances.contains(&spec.instance_id) {
            return true;
        }
        let on_host = g
            .members
            .iter()
            .filter(|m| host.instances.contains(m))
            .count();
        on_host < g.max_server_per_host.unwrap_or(1) as usize
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        match &spec.server_group {
            Some(g) if g.policy == ServerGroupPolicy::AntiAffinity => Scope::Host,
            _ => Scope::All,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::affinity::group;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use uuid::Uuid;

    #[test]
    fn at_most_max_server_per_host_members() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        spec.instance_id = Uuid::from_u128(9);
        let mut a = test_host("a");
        a.instances.insert(Uuid::from_u128(1));
        let b = test_host("b");
        assert!(
            ServerGroupAntiAffinityFilter.host_passes(&a, &spec, &ctx),
            "no group"
        );
        spec.server_group = Some(group(ServerGroupPolicy::AntiAffinity, &["a"], &[1, 2]));
        assert!(!ServerGroupAntiAffinityFilter.host_passes(&a, &spec, &ctx));
        assert!(ServerGroupAntiAffinityFilter.host_passes(&b, &spec, &ctx));
        spec.server_group.as_mut().unwrap().max_server_per_host = Some(2);
        assert!(
            ServerGroupAntiAffinityFilter.host_passes(&a, &spec, &ctx),
            "one of two allowed"
        );
        a.instances.insert(Uuid::from_u128(2));
        assert!(!ServerGroupAntiAffinityFilter.host_passes(&a, &spec, &ctx));
        a.instances.insert(Uuid::from_u128(9));
        assert!(
            ServerGroupAntiAffinityFilter.host_passes(&a, &spec, &ctx),
            "the instance's own host"
        );
    }
}
