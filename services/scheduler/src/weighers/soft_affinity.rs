//! ServerGroupSoftAffinityWeigher: for a `soft-affinity` group, the number of
//! the group's members on the host, so hosts with more of them win (Nova's
//! weigher of the same name; `soft_affinity_weight_multiplier`).

use novalog_schemas::events::{SelectHostsRequested, ServerGroupPolicy};

use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;
use uuid::Uuid;

pub struct ServerGroupSoftAffinityWeigher {
    pub multiplier: f64,
}

/// Members of the request's group on `host`, if the group has `policy`.
pub(crate) fn members_on_host(
    host: &HostState,
    spec: &SelectHostsRequested,
    policy: ServerGroupPolicy,
) -> f64 {
    match &spec.server_group {
        Some(g) if g.policy == policy => g
            .members
            .iter()
            .filter(|m| host.instances.contains(m))
            .count() as f64,
        _ => 0.0,
    }
}

/// The group's members, if the group has `policy`: no other instance counts.
pub(crate) fn members_for(
    spec: &SelectHostsRequested,
    policy: ServerGroupPolicy,
) -> Option<&[Uuid]> {
    match &spec.server_group {
        Some(g) if g.policy == policy => Some(&g.members),
        _ => None,
    }
}

pub(crate) fn feature_for(spec: &SelectHostsRequested, policy: ServerGroupPolicy) -> Feature {
    match &spec.server_group {
        Some(g) if g.policy == policy && !g.members.is_empty() => Feature::PerHost,
        _ => Feature::Zero,
    }
}

impl Weigher for ServerGroupSoftAffinityWeigher {
    fn name(&self) -> &'static str {
        "ServerGroupSoftAffinityWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("soft_affinity_weight_multiplier")
    }

    fn weight(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        members_on_host(host, spec, ServerGroupPolicy::SoftAffinity)
    }

    fn feature(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        feature_for(spec, ServerGroupPolicy::SoftAffinity)
    }

    fn zero_without<'s>(&self, spec: &'s SelectHostsRequested) -> Option<&'s [Uuid]> {
        members_for(spec, ServerGroupPolicy::SoftAffinity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;
    use crate::weighers::weigh_one;
    use uuid::Uuid;

    #[test]
    fn prefers_hosts_with_members() {
        let mut spec = test_spec(1, 1, 1);
        let mut a = test_host("a");
        a.instances.extend([Uuid::from_u128(1), Uuid::from_u128(2)]);
        let mut b = test_host("b");
        b.instances.insert(Uuid::from_u128(3));
        let c = test_host("c");
        let w = ServerGroupSoftAffinityWeigher { multiplier: 1.0 };
        assert_eq!(
            w.feature(&spec, &Context::default()),
            Feature::Zero,
            "no group"
        );
        spec.server_group = Some(crate::filters::test_group(
            ServerGroupPolicy::SoftAffinity,
            &[1, 2, 3],
        ));
        assert_eq!(weigh_one(w, &[&a, &b, &c], &spec), vec![1.0, 0.5, 0.0]);
        spec.server_group = Some(crate::filters::test_group(
            ServerGroupPolicy::SoftAntiAffinity,
            &[1, 2, 3],
        ));
        let w = ServerGroupSoftAffinityWeigher { multiplier: 1.0 };
        assert_eq!(
            weigh_one(w, &[&a, &b, &c], &spec),
            vec![0.0, 0.0, 0.0],
            "other policy"
        );
    }
}
