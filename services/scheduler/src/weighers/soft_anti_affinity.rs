//! ServerGroupSoftAntiAffinityWeigher: for a `soft-anti-affinity` group,
//! minus the number of the group's members on the host, so hosts with fewer
//! of them win (Nova's weigher of the same name;
//! `soft_anti_affinity_weight_multiplier`).

use novalog_schemas::events::{SelectHostsRequested, ServerGroupPolicy};

use super::soft_affinity::{feature_for, members_for, members_on_host};
use super::{Feature, Weigher};
use crate::filters::Context;
use crate::host_state::HostState;
use uuid::Uuid;

pub struct ServerGroupSoftAntiAffinityWeigher {
    pub multiplier: f64,
}

impl Weigher for ServerGroupSoftAntiAffinityWeigher {
    fn name(&self) -> &'static str {
        "ServerGroupSoftAntiAffinityWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn multiplier_key(&self) -> Option<&'static str> {
        Some("soft_anti_affinity_weight_multiplier")
    }

    fn weight(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> f64 {
        -members_on_host(host, spec, ServerGroupPolicy::SoftAntiAffinity)
    }

    fn feature(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        feature_for(spec, ServerGroupPolicy::SoftAntiAffinity)
    }

    fn zero_without<'s>(&self, spec: &'s SelectHostsRequested) -> Option<&'s [Uuid]> {
        members_for(spec, ServerGroupPolicy::SoftAntiAffinity)
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
    fn prefers_hosts_without_members() {
        let mut spec = test_spec(1, 1, 1);
        spec.server_group = Some(crate::filters::test_group(
            ServerGroupPolicy::SoftAntiAffinity,
            &[1, 2],
        ));
        let mut a = test_host("a");
        a.instances.extend([Uuid::from_u128(1), Uuid::from_u128(2)]);
        let mut b = test_host("b");
        b.instances.insert(Uuid::from_u128(1));
        let c = test_host("c");
        let w = ServerGroupSoftAntiAffinityWeigher { multiplier: 2.0 };
        assert_eq!(weigh_one(w, &[&a, &b, &c], &spec), vec![0.0, 1.0, 2.0]);
    }
}
