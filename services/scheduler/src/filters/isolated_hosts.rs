//! IsolatedHostsFilter: keeps `isolated_images` on `isolated_hosts` (Nova's
//! filter of the same name). With
//! `restrict_isolated_hosts_to_isolated_images` the isolated hosts also take
//! nothing else; without isolated images, isolated hosts are closed (when
//! restricting) or open like any other.

use std::collections::BTreeSet;

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct IsolatedHostsFilter {
    pub isolated_hosts: BTreeSet<String>,
    pub isolated_images: BTreeSet<String>,
    pub restrict_isolated_hosts_to_isolated_images: bool,
}

impl Filter for IsolatedHostsFilter {
    fn name(&self) -> &'static str {
        "IsolatedHostsFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let host_isolated = self.isolated_hosts.contains(&host.name);
        if self.isolated_images.is_empty() {
            return !self.restrict_isolated_hosts_to_isolated_images || !host_isolated;
        }
        let image_isolated = spec
            .image_id
            .is_some_and(|id| self.isolated_images.contains(&id.to_string()));
        if self.restrict_isolated_hosts_to_isolated_images {
            image_isolated == host_isolated
        } else {
            !image_isolated || host_isolated
        }
    }

    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        // Without isolated hosts the answer is the same for every host.
        if self.isolated_hosts.is_empty() {
            Scope::Class
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
    fn nova_result_matrix() {
        let image = Uuid::from_u128(7);
        let mut f = IsolatedHostsFilter {
            isolated_hosts: ["iso".to_string()].into(),
            isolated_images: [image.to_string()].into(),
            restrict_isolated_hosts_to_isolated_images: true,
        };
        let (iso, other) = (test_host("iso"), test_host("other"));
        let ctx = Context::default();
        let mut isolated = test_spec(1, 1, 1);
        isolated.image_id = Some(image);
        let mut plain = test_spec(1, 1, 1);
        plain.image_id = Some(Uuid::from_u128(8));
        assert!(f.host_passes(&iso, &isolated, &ctx));
        assert!(!f.host_passes(&iso, &plain, &ctx));
        assert!(!f.host_passes(&other, &isolated, &ctx));
        assert!(f.host_passes(&other, &plain, &ctx));
        f.restrict_isolated_hosts_to_isolated_images = false;
        assert!(f.host_passes(&iso, &isolated, &ctx));
        assert!(f.host_passes(&iso, &plain, &ctx));
        assert!(!f.host_passes(&other, &isolated, &ctx));
        assert!(f.host_passes(&other, &plain, &ctx));
        f.isolated_images.clear();
        assert!(f.host_passes(&iso, &plain, &ctx));
        f.restrict_isolated_hosts_to_isolated_images = true;
        assert!(!f.host_passes(&iso, &plain, &ctx));
    }
}
