//! `accessIPv4`, `accessIPv6` and `OS-DCF:diskConfig`, which Nova's create,
//! update, rebuild and resize bodies share (`parameter_types.accessIPv4`,
//! `accessIPv6`, `disk_config`; translated by `helpers.translate_attributes`).

use std::net::{Ipv4Addr, Ipv6Addr};

use novalog_schemas::AccessChange;
use serde_json::{Map, Value};

use super::{invalid, repr, string};
use crate::error::ApiError;

/// The three attributes as given in `body` (absent ones `None`), or Nova's
/// 400 naming the first that is malformed.
pub fn parse(body: &Map<String, Value>) -> Result<AccessChange, ApiError> {
    let auto_disk_config = body
        .get("OS-DCF:diskConfig")
        .map(|v| match v.as_str() {
            Some("AUTO") => Ok(true),
            Some("MANUAL") => Ok(false),
            _ => Err(invalid(
                "OS-DCF:diskConfig",
                v,
                format!("{} is not one of ['AUTO', 'MANUAL']", repr(v)),
            )),
        })
        .transpose()?;
    let access_ip_v4 = body
        .get("accessIPv4")
        .map(|v| address::<Ipv4Addr>("accessIPv4", "ipv4", v))
        .transpose()?;
    let access_ip_v6 = body
        .get("accessIPv6")
        .map(|v| address::<Ipv6Addr>("accessIPv6", "ipv6", v))
        .transpose()?;
    Ok(AccessChange {
        access_ip_v4,
        access_ip_v6,
        auto_disk_config,
    })
}

fn address<A: std::str::FromStr>(field: &str, format: &str, v: &Value) -> Result<A, ApiError> {
    string(field, v, 0, usize::MAX)?
        .parse()
        .map_err(|_| invalid(field, v, format!("{} is not a '{format}'", repr(v))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(v: Value) -> Result<AccessChange, ApiError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn given_attributes_are_parsed_and_absent_ones_left() {
        assert_eq!(p(json!({})).unwrap(), AccessChange::default());
        let c = p(json!({"accessIPv4": "1.2.3.4", "accessIPv6": "80fe::",
                         "OS-DCF:diskConfig": "AUTO"}))
        .unwrap();
        assert_eq!(c.access_ip_v4, Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(c.access_ip_v6, Some("80fe::".parse().unwrap()));
        assert_eq!(c.auto_disk_config, Some(true));
        assert_eq!(
            p(json!({"OS-DCF:diskConfig": "MANUAL"}))
                .unwrap()
                .auto_disk_config,
            Some(false)
        );
    }

    #[test]
    fn malformed_attributes_are_novas_400() {
        let err = |v| p(v).unwrap_err().message;
        assert_eq!(
            err(json!({"accessIPv4": "1.2.3"})),
            "Invalid input for field/attribute accessIPv4. Value: 1.2.3. '1.2.3' is not a 'ipv4'"
        );
        assert!(err(json!({"accessIPv4": "::1"})).contains("is not a 'ipv4'"));
        assert!(err(json!({"accessIPv6": "1.2.3.4"})).contains("is not a 'ipv6'"));
        assert!(err(json!({"accessIPv6": ""})).contains("is not a 'ipv6'"));
        assert!(err(json!({"accessIPv4": 4})).contains("is not of type 'string'"));
        assert!(
            err(json!({"OS-DCF:diskConfig": "auto"}))
                .contains("'auto' is not one of ['AUTO', 'MANUAL']")
        );
        assert!(err(json!({"OS-DCF:diskConfig": null})).contains("is not one of"));
    }
}
