//! ComputeCapabilitiesFilter: the flavor's extra specs hold for the host's
//! capabilities (Nova's filter of the same name).
//!
//! A key in the `capabilities:` namespace (`capabilities:cpu_info:arch`) is
//! looked up in the host and must match (see [`super::extra_specs_ops`]); a
//! lookup that finds nothing fails the host. A key without a namespace is
//! checked only if the host has it, else ignored. Keys in other namespaces
//! (`hw:`, `aggregate_instance_extra_specs:`, ...) are for other filters.
//!
//! The host's attributes are its `capabilities` map (Nova's `stats`) plus
//! `hypervisor_type`, `hypervisor_version` and `cpu_arch`. A nested scope
//! `a:b:c` is first looked up as the key `a:b:c`, then `a:b` with `c` read
//! from its value as a JSON object, then `a` read as JSON (Nova reads
//! `cpu_info` that way).

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope, extra_specs_ops};
use crate::host_state::HostState;

pub struct ComputeCapabilitiesFilter;

/// The host's attribute `key`, if it has one (`None` for unknown keys).
fn attribute(host: &HostState, key: &str) -> Option<String> {
    if let Some(v) = host.capabilities.get(key) {
        return Some(v.clone());
    }
    match key {
        "hypervisor_type" => Some(host.hypervisor_type.clone()),
        "hypervisor_version" => Some(host.hypervisor_version.to_string()),
        "cpu_arch" => Some(host.cpu_arch.clone()),
        _ => None,
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolves `scope` (a key split at `:`), reading JSON below a prefix that
/// has a value.
fn lookup(host: &HostState, scope: &[&str]) -> Option<String> {
    for split in (1..=scope.len()).rev() {
        let Some(v) = attribute(host, &scope[..split].join(":")) else {
            continue;
        };
        if split == scope.len() {
            return Some(v);
        }
        let mut cur: serde_json::Value = serde_json::from_str(&v).ok()?;
        for part in &scope[split..] {
            cur = cur.get(part)?.clone();
        }
        return Some(json_text(&cur));
    }
    None
}

impl Filter for ComputeCapabilitiesFilter {
    fn name(&self) -> &'static str {
        "ComputeCapabilitiesFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        spec.extra_specs.iter().all(|(key, req)| {
            let scope: Vec<&str> = key.split(':').collect();
            let scope = match scope.as_slice() {
                [plain] => {
                    if attribute(host, plain).is_none() {
                        return true;
                    }
                    &scope[..]
                }
                ["capabilities", rest @ ..] => rest,
                _ => return true,
            };
            lookup(host, scope).is_some_and(|v| extra_specs_ops::matches(&v, req))
        })
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        if spec.extra_specs.is_empty() {
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
    use crate::host_state::test_host;

    fn passes(host: &HostState, specs: &[(&str, &str)]) -> bool {
        let mut spec = test_spec(1, 1, 1);
        spec.extra_specs = specs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ComputeCapabilitiesFilter.host_passes(host, &spec, &Context::default())
    }

    #[test]
    fn capabilities_namespace_and_plain_keys() {
        let mut h = test_host("h");
        h.capabilities.insert("ssd".into(), "true".into());
        h.capabilities.insert(
            "cpu_info".into(),
            r#"{"arch": "x86_64", "features": ["sse", "avx"]}"#.into(),
        );
        h.capabilities.insert("numa:nodes".into(), "2".into());
        assert!(passes(&h, &[]));
        assert!(passes(&h, &[("capabilities:ssd", "true")]));
        assert!(!passes(&h, &[("capabilities:ssd", "false")]));
        assert!(
            !passes(&h, &[("capabilities:gpu", "1")]),
            "a missing capability fails"
        );
        assert!(passes(&h, &[("capabilities:hypervisor_type", "s== fake")]));
        assert!(
            passes(&h, &[("capabilities:cpu_info:arch", "x86_64")]),
            "read from JSON"
        );
        assert!(passes(
            &h,
            &[("capabilities:cpu_info:features", "<in> avx")]
        ));
        assert!(!passes(&h, &[("capabilities:cpu_info:vendor", "Intel")]));
        assert!(
            passes(&h, &[("capabilities:numa:nodes", ">= 2")]),
            "flat key with a colon"
        );
        assert!(passes(&h, &[("ssd", "true")]), "plain key the host has");
        assert!(!passes(&h, &[("ssd", "<or> false <or> maybe")]));
        assert!(
            passes(&h, &[("gpu", "1")]),
            "plain key the host lacks is ignored"
        );
        assert!(
            passes(&h, &[("hw:cpu_policy", "dedicated")]),
            "other namespaces are ignored"
        );
        assert!(passes(&h, &[("hypervisor_version", ">= 1")]));
        assert!(!passes(&h, &[("hypervisor_version", ">= 2")]));
    }
}
