//! AvailabilityZoneFilter: the host is in the requested zone, if any. Nova's
//! admin form `zone:host` also pins the host (`zone:` or `:host` leave one
//! side open).

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct AvailabilityZoneFilter;

fn split(az: &str) -> (&str, Option<&str>) {
    match az.split_once(':') {
        Some((z, h)) => (z, Some(h).filter(|h| !h.is_empty())),
        None => (az, None),
    }
}

impl Filter for AvailabilityZoneFilter {
    fn name(&self) -> &'static str {
        "AvailabilityZoneFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        match spec.availability_zone.as_deref() {
            None | Some("") => true,
            Some(az) => {
                let (zone, pinned) = split(az);
                (zone.is_empty() || host.zone() == zone) && pinned.is_none_or(|h| h == host.name)
            }
        }
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        match spec.availability_zone.as_deref() {
            None | Some("") => Scope::All,
            Some(az) if split(az).1.is_some() => Scope::Host,
            Some(_) => Scope::Class,
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
        assert_eq!(AvailabilityZoneFilter.scope(&spec, &ctx), Scope::Class);
        spec.availability_zone = Some("az2".into());
        assert!(!AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("nova:h2".into());
        assert!(!AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        assert_eq!(AvailabilityZoneFilter.scope(&spec, &ctx), Scope::Host);
        spec.availability_zone = Some("nova:h1".into());
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some(":h1".into());
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("nova:".into());
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
    }

    #[test]
    fn an_aggregate_zone_overrides_the_registered_one() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let mut h = test_host("h1");
        h.aggregates = vec![std::sync::Arc::new(crate::host_state::Aggregate {
            name: "rack".into(),
            metadata: [("availability_zone".to_owned(), "az2".to_owned())].into(),
            hosts: ["h1".to_owned()].into(),
        })];
        spec.availability_zone = Some("az2".into());
        assert!(AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
        spec.availability_zone = Some("nova".into());
        assert!(!AvailabilityZoneFilter.host_passes(&h, &spec, &ctx));
    }
}
