//! The body of `POST /flavors` at 2.1 (Nova's `schemas/flavors.py` `create`).

use serde_json::Value;

use super::{boolean, integer, invalid, name as valid_name, object, only, repr, required};
use crate::error::ApiError;

/// Nova's `db.MAX_INT`, the ceiling of every integer flavor attribute.
const MAX_INT: u64 = 2_147_483_647;

const KEYS: &[&str] = &[
    "name",
    "id",
    "ram",
    "vcpus",
    "disk",
    "OS-FLV-EXT-DATA:ephemeral",
    "swap",
    "rxtx_factor",
    "os-flavor-access:is_public",
];

pub use crate::domain::catalog::FlavorCreate;

fn bounded(field: &str, value: &Value, min: u64) -> Result<u64, ApiError> {
    let n = integer(field, value, min)?;
    if n > MAX_INT {
        return Err(invalid(
            field,
            value,
            format!(
                "{} is greater than the maximum of {MAX_INT}",
                super::display(value)
            ),
        ));
    }
    Ok(n)
}

fn flavor_id(value: &Value) -> Result<Option<String>, ApiError> {
    let id = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => {
            return Err(invalid(
                "id",
                other,
                format!("{} is not of type 'string', 'number', 'null'", repr(other)),
            ));
        }
    };
    let n = id.chars().count();
    if n == 0 {
        return Err(invalid(
            "id",
            value,
            format!("{} is too short", repr(value)),
        ));
    }
    if n > 255 {
        return Err(invalid("id", value, format!("{} is too long", repr(value))));
    }
    let chars_ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ". _-".contains(c));
    if !chars_ok || id.starts_with(' ') || id.ends_with(' ') {
        return Err(invalid(
            "id",
            value,
            format!(
                "{} does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'",
                repr(value)
            ),
        ));
    }
    Ok(Some(id))
}

fn rxtx_factor(value: &Value) -> Result<f32, ApiError> {
    let f = match value {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => {
            let (int, frac) = s.split_once('.').unwrap_or((s, "1"));
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            if !digits(int) || !digits(frac) {
                return Err(invalid(
                    "rxtx_factor",
                    value,
                    format!("{} does not match '^[0-9]+(\\\\.[0-9]+)?$'", repr(value)),
                ));
            }
            s.parse::<f64>().unwrap_or(0.0)
        }
        other => {
            return Err(invalid(
                "rxtx_factor",
                other,
                format!("{} is not of type 'number', 'string'", repr(other)),
            ));
        }
    };
    if f <= 0.0 {
        return Err(invalid(
            "rxtx_factor",
            value,
            format!(
                "{} is less than or equal to the minimum of 0",
                super::display(value)
            ),
        ));
    }
    if f > 3.40282e38 {
        return Err(invalid(
            "rxtx_factor",
            value,
            format!(
                "{} is greater than the maximum of 3.40282e+38",
                super::display(value)
            ),
        ));
    }
    Ok(f as f32)
}

/// Validates a flavor create body.
/// [`parse`] at a microversion: from 2.55 a `description` (a string of
/// at most 65535 characters, or null) is accepted too.
pub fn parse_at(
    body: &Value,
    version: crate::microversion::ApiVersion,
) -> Result<FlavorCreate, ApiError> {
    let mut body = body.clone();
    let mut description = None;
    if version.at_least(2, 55)
        && let Some(f) = body.get_mut("flavor").and_then(Value::as_object_mut)
        && let Some(d) = f.remove("description")
        && !d.is_null()
    {
        description = Some(crate::validation::string("description", &d, 0, 65535)?.to_owned());
    }
    let mut req = parse(&body)?;
    req.description = description;
    Ok(req)
}

pub fn parse(body: &Value) -> Result<FlavorCreate, ApiError> {
    let top = object("", body)?;
    let flavor_value = required("", top, "flavor")?;
    let f = object("flavor", flavor_value)?;
    only("", top, &["flavor"])?;

    let name = f.get("name").map(|v| valid_name("name", v)).transpose()?;
    let id = f.get("id").map(flavor_id).transpose()?.flatten();
    let ram = f.get("ram").map(|v| bounded("ram", v, 1)).transpose()?;
    let vcpus = f.get("vcpus").map(|v| bounded("vcpus", v, 1)).transpose()?;
    let disk = f.get("disk").map(|v| bounded("disk", v, 0)).transpose()?;
    let ephemeral = f
        .get("OS-FLV-EXT-DATA:ephemeral")
        .map(|v| bounded("OS-FLV-EXT-DATA:ephemeral", v, 0))
        .transpose()?;
    let swap = f.get("swap").map(|v| bounded("swap", v, 0)).transpose()?;
    let rxtx = f.get("rxtx_factor").map(rxtx_factor).transpose()?;
    let is_public = f
        .get("os-flavor-access:is_public")
        .map(|v| boolean("os-flavor-access:is_public", v))
        .transpose()?;

    for key in ["name", "ram", "vcpus", "disk"] {
        required("flavor", f, key)?;
    }
    only("flavor", f, KEYS)?;
    let (Some(name), Some(ram_mb), Some(vcpus), Some(disk_gb)) = (name, ram, vcpus, disk) else {
        unreachable!("required keys were checked above");
    };
    Ok(FlavorCreate {
        name,
        id,
        ram_mb,
        vcpus: vcpus as u32,
        disk_gb,
        ephemeral_gb: ephemeral.unwrap_or(0),
        swap_mb: swap.unwrap_or(0),
        rxtx_factor: rxtx.unwrap_or(1.0),
        is_public: is_public.unwrap_or(true),
        description: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn description_from_2_55() {
        use crate::microversion::ApiVersion;
        let body = json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "description": "small"}});
        let r = parse_at(&body, ApiVersion::new(2, 55)).unwrap();
        assert_eq!(r.description.as_deref(), Some("small"));
        let e = parse_at(&body, ApiVersion::new(2, 54)).unwrap_err();
        assert!(
            e.message.contains("'description' was unexpected"),
            "{}",
            e.message
        );
    }

    #[test]
    fn defaults_like_nova() {
        let f = parse(&json!({"flavor": {"name": "m1.test", "ram": 512, "vcpus": 1, "disk": 1}}))
            .unwrap();
        assert_eq!(f.id, None);
        assert_eq!((f.ephemeral_gb, f.swap_mb), (0, 0));
        assert_eq!(f.rxtx_factor, 1.0);
        assert!(f.is_public);
        let f = parse(
            &json!({"flavor": {"name": "x", "id": 10, "ram": "1024", "vcpus": "2", "disk": 0,
            "rxtx_factor": "1.5", "os-flavor-access:is_public": false}}),
        )
        .unwrap();
        assert_eq!(f.id.as_deref(), Some("10"));
        assert_eq!(f.ram_mb, 1024);
        assert_eq!(f.rxtx_factor, 1.5);
        assert!(!f.is_public);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |b: Value| parse(&b).unwrap_err().message;
        assert!(e(json!({})).contains("'flavor' is a required property"));
        assert!(
            e(json!({"flavor": {"name": "x", "vcpus": 1, "disk": 1}}))
                .contains("'ram' is a required property")
        );
        assert!(
            e(json!({"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 1}}))
                .contains("field/attribute ram")
        );
        assert!(
            e(json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": -1}}))
                .contains("field/attribute disk")
        );
        assert!(
            e(json!({"flavor": {"name": "x", "id": " a", "ram": 1, "vcpus": 1, "disk": 1}}))
                .contains("field/attribute id")
        );
        assert!(
            e(json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "rxtx_factor": 0}}))
                .contains("field/attribute rxtx_factor")
        );
        assert!(
            e(json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "color": "red"}}))
                .contains("('color' was unexpected)")
        );
        assert!(
            e(json!({"flavor": {"name": "x", "ram": 1, "vcpus": 3_000_000_000u64, "disk": 1}}))
                .contains("field/attribute vcpus")
        );
    }
}
