//! A JSON-Schema (draft 4) validator for the subset of keywords Nova's
//! request schemas use, answering with the 400 Nova's validator words
//! (`Invalid input for field/attribute <field>. Value: <value>. <reason>`,
//! the field being the last element of the error's path, as Nova's
//! `ex.path.pop()`).
//!
//! The schemas it checks are the ones [`super::requests`] lists and
//! `GET /openapi.json` publishes, so what the document says about a body
//! is what the API enforces. Keywords outside the subset are refused by a
//! test (`requests::tests::known_keywords_only`) so that a schema never claims a rule
//! that is not checked.
//!
//! Like Nova's `_SchemaValidator`, `minimum` and `maximum` also bound a
//! string of digits (Nova's integer fields accept `"1024"`), and the first
//! error found is the answer (Nova's `validator.validate`, not
//! `best_match`).

use std::sync::LazyLock;

use parking_lot::Mutex;
use regex::Regex;
use serde_json::{Map, Value};

use super::{display, repr};
use crate::error::ApiError;

/// One validation failure: where (the path's last element) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    /// The path into the body; empty at the top.
    pub path: Vec<String>,
    /// The value that failed.
    pub value: Value,
    pub reason: String,
}

impl SchemaError {
    /// Nova's 400 for it.
    pub fn into_api_error(self) -> ApiError {
        match self.path.last() {
            None => ApiError::bad_request(self.reason),
            Some(field) => super::invalid(field, &self.value, self.reason),
        }
    }
}

/// Every keyword the validator checks, plus annotations it may skip.
pub const KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "properties",
    "patternProperties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    // Annotations only.
    "description",
];

static REGEXES: LazyLock<Mutex<std::collections::HashMap<String, Regex>>> =
    LazyLock::new(Default::default);

fn matches(pattern: &str, s: &str) -> bool {
    let mut cache = REGEXES.lock();
    if let Some(re) = cache.get(pattern) {
        return re.is_match(s);
    }
    // Schemas are constants checked by tests; an invalid one matches
    // nothing rather than taking the request down.
    let Ok(re) = Regex::new(pattern) else {
        return false;
    };
    let ok = re.is_match(s);
    cache.insert(pattern.to_owned(), re);
    ok
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

/// The number a `minimum`/`maximum` compares: a JSON number, or a string
/// Nova would `int()`/`float()`.
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Exact comparison for integers (an `f64` cannot tell 2^53+1 from 2^53).
fn compare(v: &Value, bound: &Value) -> Option<std::cmp::Ordering> {
    let as_i128 = |x: &Value| match x {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    if let (Some(a), Some(b)) = (as_i128(v), as_i128(bound)) {
        return Some(a.cmp(&b));
    }
    as_number(v)?.partial_cmp(&as_number(bound)?)
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "uuid" => uuid::Uuid::parse_str(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        // Formats the validator does not know pass, as in jsonschema.
        _ => true,
    }
}

fn bound_text(b: &Value) -> String {
    match b.as_f64() {
        Some(f) if b.is_f64() && f.abs() >= 1e16 => format!("{f:e}").replace('e', "e+"),
        _ => b.to_string(),
    }
}

/// Checks `value` against `schema`; the first error found, in the order
/// Nova's validator meets them (type, then the keywords of that type).
pub fn validate(schema: &Value, value: &Value) -> Result<(), SchemaError> {
    let mut path = Vec::new();
    check(schema, value, &mut path)
}

fn fail(path: &[String], value: &Value, reason: String) -> Result<(), SchemaError> {
    Err(SchemaError {
        path: path.to_vec(),
        value: value.clone(),
        reason,
    })
}

fn check(schema: &Value, v: &Value, path: &mut Vec<String>) -> Result<(), SchemaError> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.iter().any(|t| type_matches(t, v)) {
            let names = types
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ");
            return fail(path, v, format!("{} is not of type {names}", repr(v)));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(v)
    {
        let list = options.iter().map(repr).collect::<Vec<_>>().join(", ");
        return fail(path, v, format!("{} is not one of [{list}]", repr(v)));
    }
    match v {
        Value::Object(obj) => check_object(s, obj, v, path)?,
        Value::Array(items) => check_array(s, items, v, path)?,
        Value::String(text) => check_string(s, text, v, path)?,
        _ => {}
    }
    if v.is_number() || v.is_string() {
        check_bounds(s, v, path)?;
    }
    Ok(())
}

fn check_object(
    s: &Map<String, Value>,
    obj: &Map<String, Value>,
    v: &Value,
    path: &mut Vec<String>,
) -> Result<(), SchemaError> {
    let properties = s.get("properties").and_then(Value::as_object);
    if let Some(props) = properties {
        for (key, sub) in props {
            if let Some(child) = obj.get(key) {
                path.push(key.clone());
                check(sub, child, path)?;
                path.pop();
            }
        }
    }
    let patterns = s.get("patternProperties").and_then(Value::as_object);
    if let Some(patterns) = patterns {
        for (pattern, sub) in patterns {
            for (key, child) in obj {
                if matches(pattern, key) {
                    path.push(key.clone());
                    check(sub, child, path)?;
                    path.pop();
                }
            }
        }
    }
    if let Some(Value::Array(required)) = s.get("required") {
        for key in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(key) {
                return fail(path, v, format!("'{key}' is a required property"));
            }
        }
    }
    if let Some(extra) = s.get("additionalProperties") {
        let known = |k: &str| {
            properties.is_some_and(|p| p.contains_key(k))
                || patterns.is_some_and(|p| p.keys().any(|pattern| matches(pattern, k)))
        };
        let unknown: Vec<&String> = obj.keys().filter(|k| !known(k)).collect();
        match extra {
            Value::Bool(false) if !unknown.is_empty() => {
                let names = unknown
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                // jsonschema words it by the patterns when there are some.
                if let Some(patterns) = patterns {
                    let verb = if unknown.len() == 1 { "does" } else { "do" };
                    let list = patterns
                        .keys()
                        .map(|p| format!("'{p}'"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return fail(
                        path,
                        v,
                        format!("{names} {verb} not match any of the regexes: {list}"),
                    );
                }
                let verb = if unknown.len() == 1 { "was" } else { "were" };
                return fail(
                    path,
                    v,
                    format!("Additional properties are not allowed ({names} {verb} unexpected)"),
                );
            }
            Value::Object(_) => {
                for key in unknown {
                    path.push(key.clone());
                    check(extra, &obj[key], path)?;
                    path.pop();
                }
            }
            _ => {}
        }
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && (obj.len() as u64) < min
    {
        return fail(
            path,
            v,
            format!("{} does not have enough properties", repr(v)),
        );
    }
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && obj.len() as u64 > max
    {
        return fail(path, v, format!("{} has too many properties", repr(v)));
    }
    Ok(())
}

fn check_array(
    s: &Map<String, Value>,
    items: &[Value],
    v: &Value,
    path: &mut Vec<String>,
) -> Result<(), SchemaError> {
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        return fail(path, v, format!("{} is too short", repr(v)));
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        return fail(path, v, format!("{} is too long", repr(v)));
    }
    if s.get("uniqueItems") == Some(&Value::Bool(true)) {
        for (i, a) in items.iter().enumerate() {
            if items[..i].contains(a) {
                return fail(path, v, format!("{} has non-unique elements", repr(v)));
            }
        }
    }
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            path.push(i.to_string());
            check(item_schema, item, path)?;
            path.pop();
        }
    }
    Ok(())
}

fn check_string(
    s: &Map<String, Value>,
    text: &str,
    v: &Value,
    path: &[String],
) -> Result<(), SchemaError> {
    let n = text.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && n < min
    {
        return fail(path, v, format!("{} is too short", repr(v)));
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && n > max
    {
        return fail(path, v, format!("{} is too long", repr(v)));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && !matches(pattern, text)
    {
        return fail(path, v, format!("{} does not match '{pattern}'", repr(v)));
    }
    if let Some(format) = s.get("format").and_then(Value::as_str)
        && !format_ok(format, text)
    {
        return fail(path, v, format!("{} is not a '{format}'", repr(v)));
    }
    Ok(())
}

fn check_bounds(s: &Map<String, Value>, v: &Value, path: &[String]) -> Result<(), SchemaError> {
    let exclusive = s.get("exclusiveMinimum") == Some(&Value::Bool(true));
    if let Some(min) = s.get("minimum")
        && let Some(order) = compare(v, min)
    {
        let below = if exclusive {
            order != std::cmp::Ordering::Greater
        } else {
            order == std::cmp::Ordering::Less
        };
        if below {
            let how = if exclusive {
                "less than or equal to"
            } else {
                "less than"
            };
            return fail(
                path,
                v,
                format!("{} is {how} the minimum of {}", display(v), bound_text(min)),
            );
        }
    }
    if let Some(max) = s.get("maximum")
        && compare(v, max) == Some(std::cmp::Ordering::Greater)
    {
        return fail(
            path,
            v,
            format!(
                "{} is greater than the maximum of {}",
                display(v),
                bound_text(max)
            ),
        );
    }
    Ok(())
}

/// The keywords of `schema` (recursively) that [`KEYWORDS`] does not know.
pub fn unknown_keywords(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, &mut out);
    out
}

fn walk(schema: &Value, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    for (k, v) in s {
        if !KEYWORDS.contains(&k.as_str()) {
            out.push(k.clone());
        }
        match k.as_str() {
            "properties" | "patternProperties" => {
                for sub in v.as_object().into_iter().flat_map(|m| m.values()) {
                    walk(sub, out);
                }
            }
            "items" | "additionalProperties" => walk(v, out),
            "pattern" => {
                if let Some(p) = v.as_str()
                    && Regex::new(p).is_err()
                {
                    out.push(format!("pattern {p}"));
                }
            }
            _ => {}
        }
    }
    if let Some(p) = s.get("patternProperties").and_then(Value::as_object) {
        for pattern in p.keys() {
            if Regex::new(pattern).is_err() {
                out.push(format!("patternProperties {pattern}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn err(schema: Value, v: Value) -> String {
        validate(&schema, &v).unwrap_err().into_api_error().message
    }

    #[test]
    fn messages_are_novas() {
        let s = json!({"type": "object", "properties": {"flavor": {"type": "object",
            "properties": {"ram": {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "maximum": 2147483647}},
            "required": ["ram"], "additionalProperties": false}},
            "required": ["flavor"], "additionalProperties": false});
        assert_eq!(err(s.clone(), json!(null)), "None is not of type 'object'");
        assert_eq!(err(s.clone(), json!({})), "'flavor' is a required property");
        assert_eq!(
            err(s.clone(), json!({"flavor": {}})),
            "Invalid input for field/attribute flavor. Value: {}. 'ram' is a required property"
        );
        assert_eq!(
            err(s.clone(), json!({"flavor": {"ram": 0}})),
            "Invalid input for field/attribute ram. Value: 0. 0 is less than the minimum of 1"
        );
        assert_eq!(
            err(s.clone(), json!({"flavor": {"ram": "2147483648"}})),
            "Invalid input for field/attribute ram. Value: 2147483648. 2147483648 is greater than the maximum of 2147483647"
        );
        assert_eq!(
            err(s.clone(), json!({"flavor": {"ram": 1.5}})),
            "Invalid input for field/attribute ram. Value: 1.5. 1.5 is not of type 'integer', 'string'"
        );
        assert_eq!(
            err(s.clone(), json!({"flavor": {"ram": 1, "x": 1}})),
            "Invalid input for field/attribute flavor. Value: {'ram': 1, 'x': 1}. Additional properties are not allowed ('x' was unexpected)"
        );
        assert_eq!(
            err(s.clone(), json!({"flavor": {"ram": 1}, "a": 1, "b": 2})),
            "Additional properties are not allowed ('a', 'b' were unexpected)"
        );
        assert!(validate(&s, &json!({"flavor": {"ram": "512"}})).is_ok());
    }

    #[test]
    fn huge_numbers_are_compared_exactly() {
        let s = json!({"type": "integer", "maximum": 9007199254740992u64});
        assert!(validate(&s, &json!(9007199254740992u64)).is_ok());
        assert!(validate(&s, &json!(9007199254740993u64)).is_err());
        assert!(validate(&s, &json!(u64::MAX)).is_err());
        let s = json!({"type": "integer", "minimum": -1});
        assert!(validate(&s, &json!(i64::MIN)).is_err());
    }

    #[test]
    fn strings_patterns_formats_arrays() {
        let meta = json!({"type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}}, "additionalProperties": false});
        assert!(validate(&meta, &json!({"a": "b"})).is_ok());
        assert!(
            err(meta.clone(), json!({"a/b": "c"}))
                .ends_with("'a/b' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'")
        );
        assert_eq!(
            err(meta, json!({"k": "x".repeat(256)})),
            format!(
                "Invalid input for field/attribute k. Value: {0}. '{0}' is too long",
                "x".repeat(256)
            )
        );
        let uuid = json!({"type": "string", "format": "uuid"});
        assert!(err(uuid, json!("nope")).ends_with("'nope' is not a 'uuid'"));
        let tags = json!({"type": "array", "maxItems": 2, "uniqueItems": true, "items": {"type": "string", "maxLength": 3}});
        assert!(err(tags.clone(), json!(["a", "b", "c"])).ends_with("is too long"));
        assert!(err(tags.clone(), json!(["a", "a"])).ends_with("has non-unique elements"));
        assert!(err(tags, json!(["abcd"])).starts_with("Invalid input for field/attribute 0."));
        let rx = json!({"type": ["number", "string"], "minimum": 0, "exclusiveMinimum": true, "maximum": 3.40282e38});
        assert!(err(rx.clone(), json!(0)).ends_with("0 is less than or equal to the minimum of 0"));
        assert!(err(rx, json!(1e39)).contains("is greater than the maximum of 3.40282e+38"));
        let e = json!({"enum": ["HARD", "SOFT"]});
        assert_eq!(err(e, json!("x")), "'x' is not one of ['HARD', 'SOFT']");
    }

    #[test]
    fn unknown_keywords_are_found() {
        let s = json!({"type": "object", "properties": {"a": {"oneOf": []}}, "items": {"pattern": "(?<! )"}});
        let mut found = unknown_keywords(&s);
        found.sort();
        assert_eq!(found, vec!["oneOf", "pattern (?<! )"]);
    }
}
