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
}
