//! ImagePropertiesFilter: the image's architecture, hypervisor type and VM
//! mode, where given, are among what the host supports, and its hypervisor
//! version requirement holds (Nova's filter of the same name).
//!
//! Image properties are read under Nova's current names (`hw_architecture`,
//! `img_hv_type`, `hw_vm_mode`, `img_hv_requested_version`) or the legacy
//! ones (`architecture`, `hypervisor_type`, `vm_mode`,
//! `hypervisor_version_requires`). Values are canonicalised as Nova does
//! (`amd64` → `x86_64`, `pv` → `xen`, ...). The host supports its
//! `cpu_arch` and `hypervisor_type`, and the VM modes in its `vm_mode`
//! capability (comma separated; `hvm` when absent). A version requirement is
//! Nova's predicate (`>= 6.0`, `>=1.2, <2`) against the host's
//! `hypervisor_version` read as `major·10⁶ + minor·10³ + patch`; it is
//! ignored when either is unset.

use novalog_schemas::events::SelectHostsRequested;

use super::{Context, Filter, Scope};
use crate::host_state::HostState;

pub struct ImagePropertiesFilter {
    /// `image_properties_default_architecture`: assumed for images without one.
    pub default_architecture: Option<String>,
}

fn prop<'a>(spec: &'a SelectHostsRequested, names: [&str; 2]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| spec.image_properties.get(*n))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn canonical_arch(a: &str) -> String {
    let a = a.to_ascii_lowercase();
    match a.as_str() {
        "amd64" | "x64" => "x86_64".into(),
        "i386" | "i486" | "i586" | "x86" | "ia32" => "i686".into(),
        "arm64" => "aarch64".into(),
        "ppc64el" | "ppc64le" => "ppc64le".into(),
        _ => a,
    }
}

fn canonical_hv(h: &str) -> String {
    let h = h.to_ascii_lowercase();
    if h == "xapi" { "xen".into() } else { h }
}

fn canonical_vm_mode(m: &str) -> String {
    let m = m.to_ascii_lowercase();
    match m.as_str() {
        "pv" | "xen" => "xen".into(),
        "hv" | "baremetal" => "hvm".into(),
        _ => m,
    }
}

fn version(v: &str) -> Option<Vec<u64>> {
    v.trim().split('.').map(|p| p.trim().parse().ok()).collect()
}

fn cmp_versions(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Whether `host_version` satisfies every `op version` term of `predicate`;
/// an unparsable predicate is not satisfied.
pub(crate) fn version_satisfies(host_version: u64, predicate: &str) -> bool {
    use std::cmp::Ordering::*;
    let have = [
        host_version / 1_000_000,
        host_version / 1_000 % 1_000,
        host_version % 1_000,
    ];
    predicate
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .all(|term| {
            let term = term.trim();
            let (op, rest) = ["<=", ">=", "==", "!=", "<", ">"]
                .iter()
                .find_map(|op| term.strip_prefix(op).map(|r| (*op, r)))
                .unwrap_or(("==", term));
            let Some(want) = version(rest) else {
                return false;
            };
            let o = cmp_versions(&have, &want);
            match op {
                "<=" => o != Greater,
                ">=" => o != Less,
                "<" => o == Less,
                ">" => o == Greater,
                "!=" => o != Equal,
                _ => o == Equal,
            }
        })
}

impl Filter for ImagePropertiesFilter {
    fn name(&self) -> &'static str {
        "ImagePropertiesFilter"
    }

    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, _ctx: &Context) -> bool {
        let arch = prop(spec, ["hw_architecture", "architecture"])
            .or(self.default_architecture.as_deref())
            .map(canonical_arch);
        let hv = prop(spec, ["img_hv_type", "hypervisor_type"]).map(canonical_hv);
        let mode = prop(spec, ["hw_vm_mode", "vm_mode"]).map(canonical_vm_mode);
        if arch.is_some() || hv.is_some() || mode.is_some() {
            let host_modes = host
                .capabilities
                .get("vm_mode")
                .map_or("hvm", String::as_str);
            let supported = arch.is_none_or(|a| a == canonical_arch(&host.cpu_arch))
                && hv.is_none_or(|h| h == canonical_hv(&host.hypervisor_type))
                && mode.is_none_or(|m| {
                    host_modes
                        .split(',')
                        .any(|hm| canonical_vm_mode(hm.trim()) == m)
                });
            if !supported {
                return false;
            }
        }
        match prop(
            spec,
            ["img_hv_requested_version", "hypervisor_version_requires"],
        ) {
            Some(req) if host.hypervisor_version != 0 => {
                version_satisfies(host.hypervisor_version, req)
            }
            _ => true,
        }
    }

    fn scope(&self, spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        let relevant = [
            "hw_architecture",
            "architecture",
            "img_hv_type",
            "hypervisor_type",
            "hw_vm_mode",
            "vm_mode",
            "img_hv_requested_version",
            "hypervisor_version_requires",
        ];
        if self.default_architecture.is_none()
            && !relevant
                .iter()
                .any(|k| spec.image_properties.contains_key(*k))
        {
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

    fn passes(f: &ImagePropertiesFilter, host: &HostState, props: &[(&str, &str)]) -> bool {
        let mut spec = test_spec(1, 1, 1);
        spec.image_properties = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        f.host_passes(host, &spec, &Context::default())
    }

    #[test]
    fn architecture_hypervisor_and_vm_mode() {
        let f = ImagePropertiesFilter {
            default_architecture: None,
        };
        let h = test_host("h"); // x86_64, fake, version 1
        assert!(passes(&f, &h, &[]));
        assert!(!passes(&f, &h, &[("architecture", "aarch64")]));
        assert!(passes(&f, &h, &[("architecture", "x86_64")]));
        assert!(
            passes(&f, &h, &[("hw_architecture", "AMD64")]),
            "canonicalised"
        );
        assert!(passes(&f, &h, &[("img_hv_type", "fake")]));
        assert!(!passes(&f, &h, &[("hypervisor_type", "kvm")]));
        assert!(
            passes(&f, &h, &[("hw_vm_mode", "hvm")]),
            "hvm when the host says nothing"
        );
        assert!(!passes(&f, &h, &[("vm_mode", "exe")]));
        let mut xen = test_host("x");
        xen.capabilities.insert("vm_mode".into(), "hvm, xen".into());
        assert!(passes(&f, &xen, &[("vm_mode", "pv")]));
        let arm = ImagePropertiesFilter {
            default_architecture: Some("aarch64".into()),
        };
        assert!(!passes(&arm, &h, &[]), "default architecture applies");
        assert!(passes(&arm, &h, &[("architecture", "x86_64")]));
    }

    #[test]
    fn hypervisor_version_requirement() {
        let f = ImagePropertiesFilter {
            default_architecture: None,
        };
        let mut h = test_host("h");
        h.hypervisor_version = 6_002_001; // 6.2.1
        assert!(passes(&f, &h, &[("img_hv_requested_version", ">=6.0")]));
        assert!(!passes(&f, &h, &[("img_hv_requested_version", ">= 7")]));
        assert!(passes(
            &f,
            &h,
            &[("hypervisor_version_requires", ">=6.2, <6.3")]
        ));
        assert!(!passes(
            &f,
            &h,
            &[("hypervisor_version_requires", "==6.2.0")]
        ));
        assert!(passes(&f, &h, &[("hypervisor_version_requires", "6.2.1")]));
        h.hypervisor_version = 0;
        assert!(
            passes(&f, &h, &[("img_hv_requested_version", ">= 7")]),
            "unknown version: not checked"
        );
    }
}
