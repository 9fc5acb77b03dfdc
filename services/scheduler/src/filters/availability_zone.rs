//! AvailabilityZoneFilter: the host is in the requested zone, if any.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter};
use crate::host_state::HostState;

pub struct AvailabilityZoneFilter;

impl Filter for AvailabilityZoneFilter {
    fn name(&self) -> &'static str {
        "AvailabilityZoneFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        // Nova's "zone:host" form pins a host inside the zone.
        match spec.availability_zone.as_deref() {
            None | Some("") => true,
            Some(az) => {
                let (zone, pinned) = match az.split_once(':') {
                    Some((z, h)) => (z, Some(h)),
                    None => (az, None),
                };
                (zone.is_empty() || host.availability_zone == zone)
                    && pinned.is_none_or(|h| h.is_empty() || h == host.name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn honours_zone_and_zone_host() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let h = test_host("h1");
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("nova".into());
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("az2".into());
        assert!(!AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("nova:h2".into());
        assert!(!AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("nova:h1".into());
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
    }
}
