//! The body of `POST /servers` at 2.1 (Nova's `schemas/servers.py`
//! `create`), checked in the order Nova's schema checks it: each given
//! property, then the required ones, then unknown keys.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{boolean, integer, invalid, name as valid_name, object, only, repr, required, string};
use crate::error::ApiError;
use crate::microversion::ApiVersion;

/// The most instances one request may ask for. Quotas are the conductor's
/// business; this only bounds the work a single request can cause.
pub const MAX_INSTANCES_PER_REQUEST: u32 = 1000;

const TOP_LEVEL: &[&str] = &["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"];

const SERVER_KEYS: &[&str] = &[
    "name",
    "imageRef",
    "flavorRef",
    "adminPass",
    "metadata",
    "networks",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "personality",
    "availability_zone",
    "block_device_mapping",
    "block_device_mapping_v2",
    "config_drive",
    "key_name",
    "min_count",
    "max_count",
    "return_reservation_id",
    "security_groups",
    "user_data",
];

const BDM_V2_KEYS: &[&str] = &[
    "virtual_name",
    "volume_id",
    "snapshot_id",
    "volume_size",
    "device_name",
    "delete_on_termination",
    "no_device",
    "connection_info",
    "source_type",
    "uuid",
    "image_id",
    "destination_type",
    "guest_format",
    "device_type",
    "disk_bus",
    "boot_index",
];

/// The request's meaning, as the domain takes it.
pub use crate::domain::compute::{Description, NetworkRequest, Networks, ServerCreate};

/// Nova's `common.get_id_from_href`, which the domain's filters use too.
pub use crate::domain::id_from_href;

fn uuid_format(field: &str, value: &Value) -> Result<Uuid, ApiError> {
    let s = string(field, value, 0, usize::MAX)?;
    Uuid::parse_str(s)
        .map_err(|_| invalid(field, value, format!("{} is not a 'uuid'", repr(value))))
}

fn array<'a>(field: &str, value: &'a Value) -> Result<&'a Vec<Value>, ApiError> {
    value.as_array().ok_or_else(|| {
        invalid(
            field,
            value,
            format!("{} is not of type 'array'", repr(value)),
        )
    })
}

/// Python's `base64.decodebytes` acceptance: characters outside the
/// alphabet are skipped, and what remains must be correctly padded.
/// Nova's `user_data`: base64 of at most 65535 characters.
pub(crate) fn user_data(value: &Value) -> Result<String, ApiError> {
    let data = string("user_data", value, 0, 65535)?;
    if !is_base64(data) {
        return Err(invalid(
            "user_data",
            value,
            format!("{} is not a 'base64'", repr(value)),
        ));
    }
    Ok(data.to_owned())
}

fn is_base64(s: &str) -> bool {
    let kept: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || *b == b'=')
        .collect();
    let data = kept.iter().take_while(|b| **b != b'=').count();
    let padding = kept.len() - data;
    kept[data..].iter().all(|b| *b == b'=')
        && padding <= 2
        && kept.len().is_multiple_of(4)
        && data % 4 != 1
}

pub fn metadata(value: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let obj = object("metadata", value)?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let key_ok = (1..=255).contains(&k.chars().count())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        if !key_ok {
            return Err(invalid(
                "metadata",
                value,
                format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        out.insert(k.clone(), string(k, v, 0, 255)?.to_owned());
    }
    Ok(out)
}

/// Nova's `tag` (2.32): 1 to 60 characters, no `/` or `,`.
pub fn tag(value: &Value) -> Result<(), ApiError> {
    let t = string("tag", value, 1, 60)?;
    if t.contains(['/', ',']) {
        return Err(invalid(
            "tag",
            value,
            format!("{} does not match '^[^,/]*$'", repr(value)),
        ));
    }
    Ok(())
}

fn networks(value: &Value, version: ApiVersion) -> Result<Networks, ApiError> {
    let strict = version.at_least(2, 37);
    match value {
        Value::String(s) if s == "auto" => return Ok(Networks::Auto),
        Value::String(s) if s == "none" => return Ok(Networks::None),
        _ => {}
    }
    if strict {
        // 2.37's oneOf(list, enum): any failure inside reads the same.
        let not_valid = || {
            invalid(
                "networks",
                value,
                format!(
                    "{} is not valid under any of the given schemas",
                    repr(value)
                ),
            )
        };
        let list = networks_list(value, version).map_err(|_| not_valid())?;
        for n in &list {
            if n.uuid
                .as_deref()
                .is_some_and(|u| Uuid::parse_str(u).is_err())
                || n.port
                    .as_deref()
                    .is_some_and(|p| Uuid::parse_str(p).is_err())
            {
                return Err(not_valid());
            }
        }
        return Ok(Networks::List(list));
    }
    // Before 2.37 only lists are valid, but "auto" and "none" (above) are
    // accepted at every version: stock clients send them to clouds without
    // networks.
    networks_list(value, version).map(Networks::List)
}

fn networks_list(value: &Value, version: ApiVersion) -> Result<Vec<NetworkRequest>, ApiError> {
    // Network tags: 2.32 to 2.36, and again from 2.42.
    let tagged = (version.at_least(2, 32) && !version.at_least(2, 37)) || version.at_least(2, 42);
    let mut out = Vec::new();
    for item in array("networks", value)? {
        let obj = object("networks", item)?;
        let field = |k: &str| -> Result<Option<String>, ApiError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => Ok(Some(string(k, v, 0, usize::MAX)?.to_owned())),
            }
        };
        let req = NetworkRequest {
            fixed_ip: field("fixed_ip")?,
            port: field("port")?,
            uuid: field("uuid")?,
        };
        if let Some(ip) = &req.fixed_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(invalid(
                "fixed_ip",
                &Value::String(ip.clone()),
                format!("'{ip}' is not a 'ip-address'"),
            ));
        }
        if tagged && let Some(t) = obj.get("tag") {
            tag(t)?;
        }
        let keys: &[&str] = if tagged {
            &["fixed_ip", "port", "uuid", "tag"]
        } else {
            &["fixed_ip", "port", "uuid"]
        };
        only("networks", obj, keys)?;
        out.push(req);
    }
    Ok(out)
}

/// The boot image of a `block_device_mapping_v2` (`source_type: image`,
/// `boot_index: 0`, `destination_type: local`), as openstackclient sends
/// for a plain boot from image. Volumes do not exist here: mappings that
/// need one are refused.
fn bdm_v2(value: &Value, version: ApiVersion) -> Result<Option<Uuid>, ApiError> {
    // The device tag exists at 2.32 only (until 2.42).
    // Block device tags: 2.32 only (a bug dropped them), and from 2.42.
    let tagged = version == ApiVersion::new(2, 32) || version.at_least(2, 42);
    let mut boot_image = None;
    for item in array("block_device_mapping_v2", value)? {
        let obj = object("block_device_mapping_v2", item)?;
        let source = match obj.get("source_type") {
            None => None,
            Some(v) => {
                let s = string("source_type", v, 0, usize::MAX)?;
                if !["volume", "image", "snapshot", "blank"].contains(&s) {
                    return Err(invalid(
                        "source_type",
                        v,
                        format!(
                            "{} is not one of ['volume', 'image', 'snapshot', 'blank']",
                            repr(v)
                        ),
                    ));
                }
                Some(s)
            }
        };
        let destination = match obj.get("destination_type") {
            None => None,
            Some(v) => {
                let s = string("destination_type", v, 0, usize::MAX)?;
                if !["local", "volume"].contains(&s) {
                    return Err(invalid(
                        "destination_type",
                        v,
                        format!("{} is not one of ['local', 'volume']", repr(v)),
                    ));
                }
                Some(s)
            }
        };
        let boot_index = match obj.get("boot_index") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_i64(),
            Some(v @ Value::String(s)) => Some(s.parse::<i64>().map_err(|_| {
                invalid(
                    "boot_index",
                    v,
                    format!("{} does not match '^-?[0-9]+$'", repr(v)),
                )
            })?),
            Some(v) => {
                return Err(invalid(
                    "boot_index",
                    v,
                    format!("{} is not of type 'integer', 'string', 'null'", repr(v)),
                ));
            }
        };
        if tagged && let Some(t) = obj.get("tag") {
            tag(t)?;
        }
        // 2.67: a volume's type (null or up to 255 characters); with no
        // volume service every mapping that would use it is refused below.
        let typed = version.at_least(2, 67);
        if typed
            && let Some(t) = obj.get("volume_type")
            && !t.is_null()
        {
            string("volume_type", t, 0, 255)?;
        }
        let mut extra: Vec<&str> = Vec::new();
        if tagged {
            extra.push("tag");
        }
        if typed {
            extra.push("volume_type");
        }
        let allowed: Vec<&str> = BDM_V2_KEYS.iter().chain(&extra).copied().collect();
        only("block_device_mapping_v2", obj, &allowed)?;
        let needs_volume = destination == Some("volume")
            || matches!(source, Some("volume" | "snapshot"))
            || obj.contains_key("volume_id")
            || obj.contains_key("snapshot_id")
            || obj.get("volume_type").is_some_and(|t| !t.is_null());
        if needs_volume {
            return Err(ApiError::bad_request(
                "Block Device Mapping is Invalid: volumes are not supported by this cloud.",
            ));
        }
        if source == Some("image") && boot_index == Some(0) {
            let Some(uuid) = obj.get("uuid").or_else(|| obj.get("image_id")) else {
                return Err(ApiError::bad_request(
                    "Block Device Mapping is Invalid: missing uuid of the boot image.",
                ));
            };
            boot_image = Some(uuid_format("uuid", uuid)?);
        }
    }
    Ok(boot_image)
}

/// Nova's `description`: null, or up to 255 printable characters.
pub(crate) fn description(value: &Value) -> Result<Option<String>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    let d = string("description", value, 0, 255)?;
    if d.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(invalid(
            "description",
            value,
            format!(
                "{} does not match the description format (printable characters)",
                repr(value)
            ),
        ));
    }
    Ok(Some(d.to_owned()))
}

/// Validates a create body at microversion `version`.
pub fn parse(body: &Value, version: ApiVersion) -> Result<ServerCreate, ApiError> {
    let top = object("", body)?;
    let server_value = required("", top, "server")?;
    let server = object("server", server_value)?;
    let mut scheduler_hints = BTreeMap::new();
    for field in ["os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"] {
        if let Some(h) = top.get(field) {
            scheduler_hints.extend(hints(field, object(field, h)?)?);
        }
    }
    only("", top, TOP_LEVEL)?;
    let mut req = parse_server(server, version)?;
    req.scheduler_hints = scheduler_hints;
    Ok(req)
}

/// Nova's scheduler hint schema: `group` is a uuid; `same_host` and
/// `different_host` a uuid or a list of them; other hints pass as given.
fn hints(field: &str, h: &Map<String, Value>) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in h {
        let values: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect(),
            other => vec![other.to_string()],
        };
        let must_be_uuid = matches!(k.as_str(), "group" | "same_host" | "different_host");
        if must_be_uuid
            && (values.is_empty()
                || (k == "group" && !v.is_string())
                || values.iter().any(|x| Uuid::parse_str(x).is_err()))
        {
            return Err(invalid(
                &format!("{field}/{k}"),
                v,
                format!("{} is not a 'uuid'", repr(v)),
            ));
        }
        out.insert(k.clone(), values);
    }
    Ok(out)
}

fn parse_server(s: &Map<String, Value>, version: ApiVersion) -> Result<ServerCreate, ApiError> {
    let name = s.get("name").map(|v| valid_name("name", v)).transpose()?;
    let image_ref = match s.get("imageRef") {
        None => None,
        Some(v) => {
            let text = v.as_str().unwrap_or_default();
            match (v.is_string(), text.is_empty(), Uuid::parse_str(text)) {
                (true, true, _) => None,
                (true, false, Ok(id)) => Some(id),
                _ => {
                    return Err(invalid(
                        "imageRef",
                        v,
                        format!("{} is not valid under any of the given schemas", repr(v)),
                    ));
                }
            }
        }
    };
    let flavor_id = match s.get("flavorRef") {
        None => None,
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(v @ Value::String(text)) => {
            if text.is_empty() {
                return Err(invalid("flavorRef", v, "'' is too short"));
            }
            Some(id_from_href(text))
        }
        Some(v) => {
            return Err(invalid(
                "flavorRef",
                v,
                format!("{} is not of type 'string', 'integer'", repr(v)),
            ));
        }
    };
    let admin_pass = s
        .get("adminPass")
        .map(|v| string("adminPass", v, 0, usize::MAX).map(str::to_owned))
        .transpose()?;
    let metadata = s
        .get("metadata")
        .map(metadata)
        .transpose()?
        .unwrap_or_default();
    let networks = s
        .get("networks")
        .map(|v| networks(v, version))
        .transpose()?
        .unwrap_or(Networks::Unspecified);
    let access = super::access::parse(s)?.applied_to(Default::default());
    // Personality files went away in 2.57 (`only` below refuses the key).
    if let Some(v) = s.get("personality")
        && !version.at_least(2, 57)
    {
        array("personality", v)?;
    }
    let tags = match s.get("tags") {
        Some(v) if version.at_least(2, 52) => server_tags(v)?,
        _ => Vec::new(),
    };
    let availability_zone = s
        .get("availability_zone")
        .map(|v| valid_name("availability_zone", v))
        .transpose()?;
    if let Some(v) = s.get("block_device_mapping")
        && !array("block_device_mapping", v)?.is_empty()
    {
        return Err(ApiError::bad_request(
            "Block Device Mapping is Invalid: volumes are not supported by this cloud.",
        ));
    }
    let bdm_image = s
        .get("block_device_mapping_v2")
        .map(|v| bdm_v2(v, version))
        .transpose()?
        .flatten();
    if let Some(v) = s.get("config_drive") {
        boolean("config_drive", v)?;
    }
    let key_name = s
        .get("key_name")
        .map(|v| valid_name("key_name", v))
        .transpose()?;
    let count = |k: &str| -> Result<Option<u32>, ApiError> {
        s.get(k)
            .map(|v| {
                let n = integer(k, v, 1)?;
                u32::try_from(n).map_err(|_| {
                    invalid(
                        k,
                        v,
                        format!("{n} is greater than the maximum of {}", u32::MAX),
                    )
                })
            })
            .transpose()
    };
    let min_count = count("min_count")?;
    let max_count = count("max_count")?;
    let return_reservation_id = s
        .get("return_reservation_id")
        .map(|v| boolean("return_reservation_id", v))
        .transpose()?
        .unwrap_or(false);
    let security_groups = match s.get("security_groups") {
        None => None,
        Some(v) => {
            for item in array("security_groups", v)? {
                let obj = object("security_groups", item)?;
                if let Some(n) = obj.get("name") {
                    valid_name("name", n)?;
                }
                only("security_groups", obj, &["name"])?;
            }
            for item in array("security_groups", v)? {
                // Nova passes `default` through and looks every other name
                // up in the network service; with none here, `default` is
                // the only group there is, and any other name is the 400
                // Nova answers with the lookup's not-found message.
                if let Some(name) = item.get("name").and_then(Value::as_str)
                    && !name.is_empty()
                    && name != "default"
                {
                    return Err(ApiError::bad_request(format!(
                        "Unable to find security_group with name or id '{name}'"
                    )));
                }
            }
            Some(v.clone())
        }
    };
    let user_data = s.get("user_data").map(user_data).transpose()?;

    let trusted_image_certificates = match s.get("trusted_image_certificates") {
        Some(v) if version.at_least(2, 63) => trusted_certs(v)?,
        _ => None,
    };
    let fqdn_field = |k: &str| -> Result<Option<String>, ApiError> {
        match s.get(k) {
            Some(v) if version.at_least(2, 74) => fqdn(k, v).map(Some),
            _ => Ok(None),
        }
    };
    let requested_host = fqdn_field("host")?;
    let requested_node = fqdn_field("hypervisor_hostname")?;
    let hostname = match s.get("hostname") {
        Some(v) if version.at_least(2, 90) => Some(guest_hostname(v, version)?),
        _ => None,
    };

    let with_description = version.at_least(2, 19);
    let description = match s.get("description") {
        Some(v) if with_description => description(v)?,
        _ => None,
    };

    let server = Value::Object(s.clone());
    let mut missing = Vec::new();
    if name.is_none() {
        missing.push("name");
    }
    if flavor_id.is_none() {
        missing.push("flavorRef");
    }
    if version.at_least(2, 37) && networks == Networks::Unspecified {
        missing.push("networks");
    }
    if let Some(first) = missing.first() {
        return Err(invalid(
            "server",
            &server,
            format!("'{first}' is a required property"),
        ));
    }
    let (Some(name), Some(flavor_id)) = (name, flavor_id) else {
        unreachable!("required properties were checked above");
    };
    let mut allowed: Vec<&str> = SERVER_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "personality" || !version.at_least(2, 57))
        .collect();
    if with_description {
        allowed.push("description");
    }
    if version.at_least(2, 52) {
        allowed.push("tags");
    }
    if version.at_least(2, 63) {
        allowed.push("trusted_image_certificates");
    }
    if version.at_least(2, 74) {
        allowed.extend(["host", "hypervisor_hostname"]);
    }
    if version.at_least(2, 90) {
        allowed.push("hostname");
    }
    only("server", s, &allowed)?;
    let description = if with_description {
        Description::Given(description)
    } else {
        Description::Name
    };

    let min_count = min_count.unwrap_or(1);
    let max_count = max_count.unwrap_or(min_count);
    if min_count > max_count {
        return Err(ApiError::bad_request("min_count must be <= max_count"));
    }
    if max_count > MAX_INSTANCES_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "max_count may not exceed {MAX_INSTANCES_PER_REQUEST} in one request"
        )));
    }
    let image_id = image_ref.or(bdm_image);
    if image_id.is_none() {
        return Err(ApiError::bad_request("Missing imageRef attribute"));
    }
    // Nova's AmbiguousHostnameForMultipleInstances.
    if hostname.is_some() && max_count > 1 {
        return Err(ApiError::bad_request(
            "Unable to allocate a single hostname to multiple instances",
        ));
    }
    Ok(ServerCreate {
        name,
        description,
        flavor_id,
        image_id,
        metadata,
        availability_zone,
        key_name,
        user_data,
        admin_pass,
        access,
        security_groups,
        networks,
        min_count,
        max_count,
        return_reservation_id,
        scheduler_hints: BTreeMap::new(),
        tags,
        hostname,
        trusted_image_certificates,
        requested_host,
        requested_node,
    })
}

/// Nova's server tags at create (2.52): at most 50, each 1 to 60
/// characters without `/` or `,`, no repeats kept.
fn server_tags(v: &Value) -> Result<Vec<String>, ApiError> {
    let items = array("tags", v)?;
    if items.len() > 50 {
        return Err(invalid("tags", v, format!("{} is too long", repr(v))));
    }
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let t = string("tags", item, 1, 60)?;
        if t.contains(['/', ',']) {
            return Err(invalid(
                "tags",
                item,
                format!("{} does not match '^[^,/]*$'", repr(item)),
            ));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// Nova's `trusted_certs` (2.63): `null`, or 1 to 50 distinct non-empty
/// certificate ids.
pub(crate) fn trusted_certs(v: &Value) -> Result<Option<Vec<String>>, ApiError> {
    const FIELD: &str = "trusted_image_certificates";
    if v.is_null() {
        return Ok(None);
    }
    let Some(items) = v.as_array() else {
        return Err(invalid(
            FIELD,
            v,
            format!("{} is not of type 'array', 'null'", repr(v)),
        ));
    };
    if items.is_empty() {
        return Err(invalid(FIELD, v, format!("{} is too short", repr(v))));
    }
    if items.len() > 50 {
        return Err(invalid(FIELD, v, format!("{} is too long", repr(v))));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = string(FIELD, item, 1, usize::MAX)?;
        if out.iter().any(|x| x == id) {
            return Err(invalid(
                FIELD,
                v,
                format!("{} has non-unique elements", repr(v)),
            ));
        }
        out.push(id.to_owned());
    }
    Ok(Some(out))
}

/// Nova's `hostname` (2.90 to 2.93): 2 to 63 letters, digits and inner
/// dashes; from 2.94 its `fqdn`: 1 to 255 of those, dots and underscores.
pub(crate) fn guest_hostname(v: &Value, version: ApiVersion) -> Result<String, ApiError> {
    if version.at_least(2, 94) {
        return fqdn("hostname", v);
    }
    let h = string("hostname", v, 2, 63)?;
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let ok = h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && ends_ok(h.chars().next())
        && ends_ok(h.chars().last());
    if !ok {
        return Err(invalid(
            "hostname",
            v,
            format!(
                "{} does not match '^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'",
                repr(v)
            ),
        ));
    }
    Ok(h.to_owned())
}

/// Nova's `fqdn`: 1 to 255 letters, digits, `-`, `.` and `_`.
pub(crate) fn fqdn(field: &str, v: &Value) -> Result<String, ApiError> {
    let h = string(field, v, 1, 255)?;
    if !h
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err(invalid(
            field,
            v,
            format!("{} does not match '^[a-zA-Z0-9-._]*$'", repr(v)),
        ));
    }
    Ok(h.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE: &str = "70a599e0-31e7-49b7-b260-868f441e862b";

    const V2_1: ApiVersion = ApiVersion::new(2, 1);

    fn ok(server: Value) -> ServerCreate {
        parse(&json!({ "server": server }), V2_1).unwrap()
    }

    fn err(body: Value) -> String {
        parse(&body, V2_1).unwrap_err().message
    }

    #[test]
    fn tags_from_2_52_personality_until_2_56() {
        let body = |extra: Value| {
            let mut s =
                json!({"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"});
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            json!({"server": s})
        };
        let tagged = body(json!({"tags": ["a", "b", "a"]}));
        assert_eq!(
            parse(&tagged, ApiVersion::new(2, 52)).unwrap().tags,
            ["a", "b"]
        );
        assert!(parse(&tagged, ApiVersion::new(2, 51)).is_err());
        assert!(parse(&body(json!({"tags": ["a/b"]})), ApiVersion::new(2, 52)).is_err());
        assert!(parse(&body(json!({"tags": [""]})), ApiVersion::new(2, 52)).is_err());
        let personality = body(json!({"personality": []}));
        assert!(parse(&personality, ApiVersion::new(2, 56)).is_ok());
        let e = parse(&personality, ApiVersion::new(2, 57)).unwrap_err();
        assert!(
            e.message.contains("'personality' was unexpected"),
            "{}",
            e.message
        );
        // Device tags are back at 2.42.
        let net_tag = body(json!({"networks": [{"uuid": IMAGE, "tag": "nic1"}]}));
        assert!(parse(&net_tag, ApiVersion::new(2, 41)).is_err());
        assert!(parse(&net_tag, ApiVersion::new(2, 42)).is_ok());
    }

    #[test]
    fn scheduler_hints_are_kept_and_checked() {
        let group = "3b2d6a5e-8c4f-4a51-9a7e-0c9d8e7f6a5b";
        let server = json!({"name": "vm", "flavorRef": "1", "imageRef": IMAGE});
        let body = json!({"server": server, "OS-SCH-HNT:scheduler_hints": {"group": group, "different_host": [group], "foo": "bar"}});
        let c = parse(&body, V2_1).unwrap();
        assert_eq!(c.scheduler_hints["group"], vec![group.to_string()]);
        assert_eq!(c.scheduler_hints["different_host"], vec![group.to_string()]);
        assert_eq!(c.scheduler_hints["foo"], vec!["bar".to_string()]);
        let body = json!({"server": server, "os:scheduler_hints": {"group": "nope"}});
        let e = parse(&body, V2_1).unwrap_err().message;
        assert!(e.contains("os:scheduler_hints/group"), "{e}");
    }

    #[test]
    fn minimal_request() {
        let c = ok(json!({"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}));
        assert_eq!(c.name, "vm");
        assert_eq!(c.flavor_id, "1");
        assert_eq!(c.image_id, Some(Uuid::parse_str(IMAGE).unwrap()));
        assert_eq!((c.min_count, c.max_count), (1, 1));
        assert!(!c.access.auto_disk_config);
        assert_eq!(c.networks, Networks::Unspecified);
    }

    #[test]
    fn what_openstackclient_sends() {
        let c = ok(json!({
            "name": "vm",
            "imageRef": IMAGE,
            "flavorRef": "1",
            "min_count": 1,
            "max_count": 1,
            "networks": "none",
            "block_device_mapping_v2": [{
                "uuid": IMAGE, "boot_index": 0, "source_type": "image",
                "destination_type": "local", "delete_on_termination": true,
            }],
        }));
        assert_eq!(c.networks, Networks::None);
        // Without imageRef, the boot mapping names the image.
        let c = ok(json!({
            "name": "vm",
            "flavorRef": 2,
            "networks": "auto",
            "block_device_mapping_v2": [{"uuid": IMAGE, "boot_index": "0", "source_type": "image", "destination_type": "local"}],
        }));
        assert_eq!(c.image_id, Some(Uuid::parse_str(IMAGE).unwrap()));
        assert_eq!(c.flavor_id, "2");
        assert_eq!(c.networks, Networks::Auto);
    }

    #[test]
    fn flavor_links_resolve_to_their_id() {
        let c =
            ok(json!({"name": "vm", "imageRef": IMAGE, "flavorRef": "http://h/v2.1/flavors/3"}));
        assert_eq!(c.flavor_id, "3");
    }

    #[test]
    fn every_error_names_its_field() {
        let img = json!(IMAGE);
        assert!(err(json!({})).contains("'server' is a required property"));
        assert!(err(json!({"server": "x"})).contains("field/attribute server"));
        assert!(
            err(json!({"server": {"imageRef": img, "flavorRef": "1"}}))
                .contains("'name' is a required property")
        );
        assert!(
            err(json!({"server": {"name": "vm", "imageRef": img}}))
                .contains("'flavorRef' is a required property")
        );
        assert!(
            err(json!({"server": {"name": "", "imageRef": img, "flavorRef": "1"}}))
                .contains("field/attribute name")
        );
        assert!(
            err(json!({"server": {"name": 7, "imageRef": img, "flavorRef": "1"}}))
                .contains("field/attribute name")
        );
        assert!(
            err(json!({"server": {"name": "v", "imageRef": "nope", "flavorRef": "1"}}))
                .contains("field/attribute imageRef")
        );
        assert!(
            err(json!({"server": {"name": "v", "imageRef": img, "flavorRef": ""}}))
                .contains("field/attribute flavorRef")
        );
        assert!(err(json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "metadata": {"k": 1}}})).contains("field/attribute k"));
        assert!(err(json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "metadata": {"bad/key": "v"}}})).contains("field/attribute metadata"));
        assert!(
            err(
                json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "min_count": 0}})
            )
            .contains("field/attribute min_count")
        );
        assert!(err(json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "networks": "some"}})).contains("field/attribute networks"));
        assert!(err(json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "user_data": "YQ="}})).contains("field/attribute user_data"));
        let unknown = err(
            json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "flavour": "1"}}),
        );
        assert!(unknown.contains("field/attribute server"), "{unknown}");
        assert!(unknown.contains("('flavour' was unexpected)"), "{unknown}");
        assert!(
            err(json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1"}, "extra": 1}))
                .contains("('extra' was unexpected)")
        );
    }

    #[test]
    fn counts_and_images_are_checked() {
        let img = json!(IMAGE);
        assert_eq!(
            err(
                json!({"server": {"name": "v", "imageRef": img, "flavorRef": "1", "min_count": 3, "max_count": 2}})
            ),
            "min_count must be <= max_count"
        );
        let c = ok(json!({"name": "v", "imageRef": IMAGE, "flavorRef": "1", "min_count": "2"}));
        assert_eq!((c.min_count, c.max_count), (2, 2));
        assert_eq!(
            err(json!({"server": {"name": "v", "flavorRef": "1"}})),
            "Missing imageRef attribute"
        );
        assert_eq!(
            err(json!({"server": {"name": "v", "imageRef": "", "flavorRef": "1"}})),
            "Missing imageRef attribute"
        );
        let vol = err(json!({"server": {"name": "v", "flavorRef": "1",
            "block_device_mapping_v2": [{"uuid": IMAGE, "boot_index": 0, "source_type": "image", "destination_type": "volume"}]}}));
        assert!(vol.contains("Block Device Mapping is Invalid"), "{vol}");
    }

    #[test]
    fn base64_like_python() {
        assert!(is_base64("IyEvYmluL2Jhc2gK"));
        assert!(is_base64("YQ=="));
        assert!(is_base64("YW\nJj"));
        assert!(!is_base64("YQ="));
        assert!(!is_base64("Y"));
        assert!(!is_base64("YQ==YQ=="));
    }

    #[test]
    fn description_from_2_19_and_name_before() {
        let body = json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "description": "web tier"}});
        assert!(
            parse(&body, V2_1)
                .unwrap_err()
                .message
                .contains("('description' was unexpected)")
        );
        let c = parse(&body, ApiVersion::new(2, 19)).unwrap();
        assert_eq!(c.description, Description::Given(Some("web tier".into())));
        let c = ok(json!({"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}));
        assert_eq!(
            c.description,
            Description::Name,
            "before 2.19 Nova stores the name"
        );
        let body = json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}});
        assert_eq!(
            parse(&body, ApiVersion::new(2, 19)).unwrap().description,
            Description::Given(None)
        );
    }

    #[test]
    fn networks_are_required_and_strict_from_2_37() {
        let v237 = ApiVersion::new(2, 37);
        let body = json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1"}});
        assert!(
            parse(&body, v237)
                .unwrap_err()
                .message
                .contains("'networks' is a required property")
        );
        for bad in [
            json!("some"),
            json!([{"uuid": "not-a-uuid"}]),
            json!([{"tag": "t"}]),
        ] {
            let body = json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": bad}});
            let m = parse(&body, v237).unwrap_err().message;
            assert!(
                m.contains("field/attribute networks")
                    && m.contains("not valid under any of the given schemas"),
                "{m}"
            );
        }
        let body = json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1", "networks": "none"}});
        assert_eq!(parse(&body, v237).unwrap().networks, Networks::None);
        // The device tag: networks 2.32 to 2.36, block devices 2.32 only.
        let tagged = json!({"server": {"name": "vm", "imageRef": IMAGE, "flavorRef": "1",
            "networks": [{"uuid": IMAGE, "tag": "nic1"}],
            "block_device_mapping_v2": [{"uuid": IMAGE, "boot_index": 0, "source_type": "image",
                "destination_type": "local", "tag": "disk1"}]}});
        assert!(parse(&tagged, ApiVersion::new(2, 32)).is_ok());
        assert!(parse(&tagged, ApiVersion::new(2, 31)).is_err());
        assert!(
            parse(&tagged, ApiVersion::new(2, 33))
                .unwrap_err()
                .message
                .contains("block_device_mapping_v2")
        );
    }
}
