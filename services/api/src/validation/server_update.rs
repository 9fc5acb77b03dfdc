//! `PUT /servers/{id}` bodies (Nova's `base_update` schemas).

use novalog_schemas::AccessChange;
use serde_json::Value;

use super::{invalid, name, object, only, repr, required};
use crate::error::ApiError;
use crate::microversion::ApiVersion;

/// What `PUT /servers/{id}` changes; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerUpdate {
    pub name: Option<String>,
    /// From 2.19; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// `accessIPv4`, `accessIPv6`, `OS-DCF:diskConfig`.
    pub access: AccessChange,
    /// From 2.90 (an FQDN from 2.94).
    pub hostname: Option<String>,
}

pub fn parse(body: &Value, version: ApiVersion) -> Result<ServerUpdate, ApiError> {
    let obj = object("", body)?;
    only("", obj, &["server"])?;
    let server = required("", obj, "server")?;
    let s = object("server", server)?;
    let mut allowed = vec!["name", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6"];
    if version.at_least(2, 19) {
        allowed.push("description");
    }
    if version.at_least(2, 90) {
        allowed.push("hostname");
    }
    only("server", s, &allowed)?;
    let hostname = s
        .get("hostname")
        .map(|v| super::server_create::guest_hostname(v, version))
        .transpose()?;
    let new_name = s.get("name").map(|v| name("name", v)).transpose()?;
    let access = super::access::parse(s)?;
    let description = match s.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v @ Value::String(d)) => {
            if d.chars().count() > 255 {
                return Err(invalid(
                    "description",
                    v,
                    format!("{} is too long", repr(v)),
                ));
            }
            if d.chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
            {
                return Err(invalid(
                    "description",
                    v,
                    format!("{} does not match the description format", repr(v)),
                ));
            }
            Some(Some(d.clone()))
        }
        Some(v) => {
            return Err(invalid(
                "description",
                v,
                format!("{} is not of type 'string', 'null'", repr(v)),
            ));
        }
    };
    Ok(ServerUpdate {
        name: new_name,
        description,
        access,
        hostname,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn name_and_description_follow_novas_schema() {
        let v219 = ApiVersion::new(2, 19);
        let named = parse(&json!({"server": {"name": "a"}}), ApiVersion::new(2, 1)).unwrap();
        assert_eq!(named.name.as_deref(), Some("a"));
        assert_eq!(named.description, None);
        assert_eq!(
            parse(&json!({"server": {"description": null}}), v219)
                .unwrap()
                .description,
            Some(None)
        );
        assert_eq!(
            parse(&json!({"server": {"description": "d"}}), v219)
                .unwrap()
                .description,
            Some(Some("d".into()))
        );
        let access = parse(
            &json!({"server": {"accessIPv4": "10.0.0.9", "OS-DCF:diskConfig": "AUTO"}}),
            ApiVersion::new(2, 1),
        )
        .unwrap()
        .access;
        assert_eq!(access.access_ip_v4, Some([10, 0, 0, 9].into()));
        assert_eq!(access.access_ip_v6, None);
        assert_eq!(access.auto_disk_config, Some(true));
        let err = |b: Value, v| parse(&b, v).unwrap_err().message;
        assert!(
            err(
                json!({"server": {"description": "d"}}),
                ApiVersion::new(2, 18)
            )
            .contains("'description' was unexpected")
        );
        assert!(err(json!({"server": {"name": ""}}), v219).contains("field/attribute name"));
        assert!(err(json!({"server": {"name": " x"}}), v219).contains("invalid 'name' value"));
        assert!(err(json!({"server": {"description": 5}}), v219).contains("is not of type"));
        assert!(
            err(json!({"server": {"description": "x".repeat(256)}}), v219).contains("too long")
        );
        assert!(err(json!({"server": {"flavor": "1"}}), v219).contains("'flavor' was unexpected"));
        assert_eq!(err(json!({}), v219), "'server' is a required property");
        assert!(err(json!({"server": {"accessIPv6": "x"}}), v219).contains("is not a 'ipv6'"));
        assert!(
            err(json!({"server": {"OS-DCF:diskConfig": "NONE"}}), v219)
                .contains("is not one of ['AUTO', 'MANUAL']")
        );
    }
}
