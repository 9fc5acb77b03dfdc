//! Flavor bodies (nova/api/openstack/compute/views/flavors.py) at 2.1.

use novalog_schemas::Flavor;
use serde_json::{Value, json};

use super::Links;

/// A float as Nova prints it: the f32 stored, shown with its shortest
/// decimal form (1.1, not 1.100000023841858).
fn float(f: f32) -> Value {
    f.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// `GET /flavors` entries: id, name, links.
pub fn basic(links: &Links, f: &Flavor) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "links": links.pair("flavors", &f.id),
    })
}

/// The full flavor (`GET /flavors/{id}`, `/flavors/detail`, create).
pub fn show(links: &Links, f: &Flavor) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "ram": f.ram_mb,
        "disk": f.disk_gb,
        // Until 2.75 a flavor without swap shows "" (Nova's `swap or ""`).
        "swap": if f.swap_mb == 0 { json!("") } else { json!(f.swap_mb) },
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": false,
        "vcpus": f.vcpus,
        "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": if f.rxtx_factor == 0.0 { json!("") } else { float(f.rxtx_factor) },
        "links": links.pair("flavors", &f.id),
    })
}

/// The full flavor at a microversion: 2.55 adds `description`, 2.61
/// `extra_specs`, 2.75 shows no swap as 0 rather than "".
pub fn show_at(links: &Links, f: &Flavor, version: crate::microversion::ApiVersion) -> Value {
    let mut v = show(links, f);
    if version.at_least(2, 55) {
        v["description"] = json!(f.description);
    }
    if version.at_least(2, 61) {
        v["extra_specs"] = json!(f.extra_specs);
    }
    if version.at_least(2, 75) {
        v["swap"] = json!(f.swap_mb);
    }
    v
}

/// `GET /flavors` entries at a microversion (2.55 adds `description`).
pub fn basic_at(links: &Links, f: &Flavor, version: crate::microversion::ApiVersion) -> Value {
    let mut v = basic(links, f);
    if version.at_least(2, 55) {
        v["description"] = json!(f.description);
    }
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn tiny() -> Flavor {
        Flavor {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            extra_specs: Default::default(),
            description: None,
        }
    }

    #[test]
    fn show_has_novas_keys_and_empty_swap() {
        let links = Links::new("http://h");
        let v = show(&links, &tiny());
        assert_eq!(v["ram"], 512);
        assert_eq!(v["swap"], "");
        assert_eq!(v["rxtx_factor"], 1.0);
        assert_eq!(v["OS-FLV-EXT-DATA:ephemeral"], 0);
        assert_eq!(v["OS-FLV-DISABLED:disabled"], false);
        assert_eq!(v["os-flavor-access:is_public"], true);
        assert_eq!(v["links"][0]["href"], "http://h/v2.1/flavors/1");
        let mut f = tiny();
        f.swap_mb = 512;
        f.rxtx_factor = 1.1;
        let v = show(&links, &f);
        assert_eq!(v["swap"], 512);
        assert_eq!(v["rxtx_factor"], 1.1);
        let b = basic(&links, &f);
        assert_eq!(b.as_object().unwrap().len(), 3);
    }

    #[test]
    fn later_versions_add_description_extra_specs_and_numeric_swap() {
        use crate::microversion::ApiVersion;
        let links = Links::new("http://h");
        let mut f = tiny();
        f.extra_specs
            .insert("hw:cpu_policy".into(), "dedicated".into());
        let v = show_at(&links, &f, ApiVersion::new(2, 54));
        assert!(v.get("description").is_none() && v.get("extra_specs").is_none());
        let v = show_at(&links, &f, ApiVersion::new(2, 61));
        assert_eq!(v["description"], Value::Null);
        assert_eq!(v["extra_specs"]["hw:cpu_policy"], "dedicated");
        assert_eq!(v["swap"], "");
        assert_eq!(show_at(&links, &f, ApiVersion::new(2, 75))["swap"], 0);
        assert!(
            basic_at(&links, &f, ApiVersion::new(2, 55))
                .get("description")
                .is_some()
        );
    }
}
