//! ImagePropertiesFilter: the image's `architecture`, `hypervisor_type` and
//! `vm_mode` properties, where set, match the host.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter};
use crate::host_state::HostState;

pub struct ImagePropertiesFilter;

impl Filter for ImagePropertiesFilter {
    fn name(&self) -> &'static str {
        "ImagePropertiesFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let props = &spec.image_properties;
        let matches = |key: &str, have: &str| props.get(key).is_none_or(|want| want.eq_ignore_ascii_case(have));
        matches("architecture", &host.cpu_arch)
            && matches("hypervisor_type", &host.hypervisor_type)
            && props
                .get("vm_mode")
                .is_none_or(|m| host.capabilities.get("vm_mode").is_none_or(|h| h.eq_ignore_ascii_case(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::test_host;

    #[test]
    fn matches_architecture() {
        let ctx = Context::default();
        let mut spec = test_spec(1, 1, 1);
        let h = test_host("h");
        assert!(ImagePropertiesFilter.host_passes(&h, &spec, &ctx));
        spec.image_properties.insert("architecture".into(), "aarch64".into());
        assert!(!ImagePropertiesFilter.host_passes(&h, &spec, &ctx));
        spec.image_properties.insert("architecture".into(), "x86_64".into());
        assert!(ImagePropertiesFilter.host_passes(&h, &spec, &ctx));
    }
}
