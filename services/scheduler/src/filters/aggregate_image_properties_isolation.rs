//! AggregateImagePropertiesIsolation: a host in an aggregate whose metadata
//! names an image property takes only images whose property is one of the
//! aggregate's values (Nova's filter of the same name).
//!
//! The metadata of the host's aggregates is merged key by key, each value
//! split at commas and trimmed. For each key (only keys starting with
//! `namespace` + `separator` when `aggregate_image_properties_isolation_
//! namespace` is set), an image setting that property to a non-empty value
//! outside the key's values fails the host; an image without it passes.

use std::collections::{BTreeMap, BTreeSet};

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct AggregateImagePropertiesIsolation {
    /// Only metadata keys under this namespace count (none: every key).
    pub namespace: Option<String>,
    /// Between the namespace and the property name.
    pub separator: String,
}

impl AggregateImagePropertiesIsolation {
    fn counts(&self, key: &str) -> bool {
        match self.namespace.as_deref() {
            None | Some("") => true,
            Some(ns) => key
                .strip_prefix(ns)
                .is_some_and(|rest| rest.starts_with(self.separator.as_str())),
        }
    }
}

impl Filter for AggregateImagePropertiesIsolation {
    fn name(&self) -> &'static str {
        "AggregateImagePropertiesIsolation"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let mut metadata: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for a in &host.aggregates {
            for (k, v) in &a.metadata {
                metadata
                    .entry(k.as_str())
                    .or_default()
                    .extend(v.split(',').map(str::trim));
            }
        }
        metadata.iter().all(|(key, options)| {
            !self.counts(key)
                || spec
                    .image_properties
                    .get(*key)
                    .is_none_or(|prop| prop.is_empty() || options.contains(prop.as_str()))
        })
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if spec.image_properties.is_empty() {
            Scope::All
        } else {
            Scope::Class
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::test_spec;
    use crate::host_state::{aggregate, test_host};

    fn filter(namespace: Option<&str>) -> AggregateImagePropertiesIsolation {
        AggregateImagePropertiesIsolation {
            namespace: namespace.map(String::from),
            separator: ".".into(),
        }
    }

    fn passes(
        f: &AggregateImagePropertiesIsolation,
        host: &HostState,
        props: &[(&str, &str)],
    ) -> bool {
        let mut spec = test_spec(1, 1, 1);
        spec.image_properties = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        f.host_passes(host, &spec, &Context::default())
    }

    #[test]
    fn images_must_match_the_aggregate_properties_they_set() {
        let f = filter(None);
        let mut h = test_host("h");
        h.aggregates = vec![
            aggregate("linux", &[("os_distro", "ubuntu, centos")]),
            aggregate("more", &[("os_distro", "debian")]),
        ];
        assert!(
            passes(&f, &h, &[("os_distro", "centos")]),
            "comma-split values"
        );
        assert!(
            passes(&f, &h, &[("os_distro", "debian")]),
            "values merge across aggregates"
        );
        assert!(!passes(&f, &h, &[("os_distro", "windows")]));
        assert!(passes(&f, &h, &[]), "an image without the property passes");
        assert!(
            passes(&f, &h, &[("os_distro", "")]),
            "an empty property passes"
        );
        assert!(
            passes(&f, &test_host("bare"), &[("os_distro", "windows")]),
            "no aggregate, no rule"
        );
    }

    #[test]
    fn a_namespace_limits_the_keys_that_count() {
        let mut h = test_host("h");
        h.aggregates = vec![aggregate(
            "iso",
            &[("iso.os_distro", "ubuntu"), ("os_distro", "centos")],
        )];
        let f = filter(Some("iso"));
        assert!(
            passes(&f, &h, &[("os_distro", "windows")]),
            "outside the namespace"
        );
        assert!(!passes(&f, &h, &[("iso.os_distro", "windows")]));
        assert!(passes(&f, &h, &[("iso.os_distro", "ubuntu")]));
        let other_separator = AggregateImagePropertiesIsolation {
            namespace: Some("iso".into()),
            separator: ":".into(),
        };
        assert!(
            passes(&other_separator, &h, &[("iso.os_distro", "windows")]),
            "the separator is part of the prefix"
        );
        assert!(
            !passes(&filter(Some("")), &h, &[("os_distro", "windows")]),
            "an empty namespace is none"
        );
    }
}
