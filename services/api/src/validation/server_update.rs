//! `PUT /servers/{id}` bodies (Nova's `base_update` schemas).

use serde_json::Value;

use super::{invalid, name, object, only, repr, required};
use crate::error::ApiError;
use crate::microversion::ApiVersion;

/// The new name, and from 2.19 the new description (`Some(None)` clears
/// it); absent fields stay as they are.
pub type ServerUpdate = (Option<String>, Option<Option<String>>);

pub fn parse(body: &Value, version: ApiVersion) -> Result<ServerUpdate, ApiError> {
    let obj = object("", body)?;
    only("", obj, &["server"])?;
    let server = required("", obj, "server")?;
    let s = object("server", server)?;
    let allowed: &[&str] = if version.at_least(2, 19) {
        &["name", "description"]
    } else {
        &["name"]
    };
    only("server", s, allowed)?;
    let new_name = s.get("name").map(|v| name("name", v)).transpose()?;
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
    Ok((new_name, description))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn name_and_description_follow_novas_schema() {
        let v219 = ApiVersion::new(2, 19);
        assert_eq!(
            parse(&json!({"server": {"name": "a"}}), ApiVersion::new(2, 1)).unwrap(),
            (Some("a".into()), None)
        );
        assert_eq!(
            parse(&json!({"server": {"description": null}}), v219).unwrap(),
            (None, Some(None))
        );
        assert_eq!(
            parse(&json!({"server": {"description": "d"}}), v219).unwrap(),
            (None, Some(Some("d".into())))
        );
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
    }
}
