//! ServerGroupAffinityFilter: for a group with the `affinity` policy, only
//! the hosts the group's members are on — any host while the group has none
//! yet (Nova's filter of the same name).

use novalog_schemas::events::{SelectHostsRequested, ServerGroupPolicy};

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct ServerGroupAffinityFilter;

impl Filter for ServerGroupAffinityFilter {
    fn name(&self) -> &'static str {
        "ServerGroupAffinityFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        match &spec.server_group {
            Some(g) if g.policy == ServerGroupPolicy::Affinity && !g.hosts.is_empty() => {
                g.hosts.iter().any(|h| h == &host.name)
            }
            _ => true,
        }
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        match &spec.server_group {
            Some(g) if g.policy == ServerGroupPolicy::Affinity && !g.hosts.is_empty() => {
                Scope::Host
            }
            _ => Scope::All,
        }
    }
}

#[cfg(test)]
pub(crate) fn group(
    policy: ServerGroupPolicy,
    hosts: &[&str],
    members: &[u128],
) -> novalog_schemas::events::ServerGroupSpec {
    novalog_schemas::events::ServerGroupSpec {
        id: uuid::Uuid::from_u128(0xfeed),
        policy,
        max_server_per_host: None,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        members: members.iter().map(|m| uuid::Uuid::from_u128(*m)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn only_the_groups_hosts_once_it_has_some() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let (a, b) = (test_host("a"), test_host("b"));
        assert!(
            ServerGroupAffinityFilter.host_passes(&b, &spec, &ctx),
            "no group"
        );
        spec.server_group = Some(group(ServerGroupPolicy::Affinity, &[], &[]));
        assert!(
            ServerGroupAffinityFilter.host_passes(&b, &spec, &ctx),
            "first member goes anywhere"
        );
        spec.server_group = Some(group(ServerGroupPolicy::Affinity, &["a"], &[1]));
        assert!(ServerGroupAffinityFilter.host_passes(&a, &spec, &ctx));
        assert!(!ServerGroupAffinityFilter.host_passes(&b, &spec, &ctx));
        spec.server_group = Some(group(ServerGroupPolicy::SoftAffinity, &["a"], &[1]));
        assert!(
            ServerGroupAffinityFilter.host_passes(&b, &spec, &ctx),
            "soft policy is a weigher's"
        );
    }
}
