//! Request body validation with Nova's messages. Nova validates bodies with
//! JSON schemas and words its 400s as
//! `Invalid input for field/attribute <field>. Value: <value>. <reason>`;
//! these helpers produce the same wording so the field is always named.

pub mod access;
pub mod flavor_create;
pub mod query;
pub mod requests;
pub mod schema;
pub mod server_create;
pub mod server_update;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Python's `repr()` of a JSON value, as jsonschema's messages print it.
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", repr(&Value::String(k.clone())), repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `str()`: strings bare, everything else as `repr`.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// `Invalid input for field/attribute {field}. Value: {value}. {reason}`.
pub fn invalid(field: &str, value: &Value, reason: impl AsRef<str>) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {}. {}",
        display(value),
        reason.as_ref()
    ))
}

fn type_error(field: &str, value: &Value, types: &str) -> ApiError {
    invalid(
        field,
        value,
        format!("{} is not of type {types}", repr(value)),
    )
}

/// `null` at `field` (the body of an action that takes no arguments), or
/// the 400 for anything else.
pub fn null(field: &str, value: &Value) -> Result<(), ApiError> {
    if value.is_null() {
        return Ok(());
    }
    Err(invalid(
        field,
        value,
        format!("{} is not of type 'null'", repr(value)),
    ))
}

/// The object at `field`, or the 400 for it.
pub fn object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| {
        if field.is_empty() {
            ApiError::bad_request(format!("{} is not of type 'object'", repr(value)))
        } else {
            type_error(field, value, "'object'")
        }
    })
}

/// Refuses keys of `obj` (the value of `field`) outside `allowed`
/// (`additionalProperties: false`).
pub fn only(field: &str, obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    let extra: Vec<&String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let names = extra
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let verb = if extra.len() == 1 { "was" } else { "were" };
    let reason = format!("Additional properties are not allowed ({names} {verb} unexpected)");
    if field.is_empty() {
        Err(ApiError::bad_request(reason))
    } else {
        Err(invalid(field, &Value::Object(obj.clone()), reason))
    }
}

/// The required `key` of `obj` (the value of `field`).
pub fn required<'a>(
    field: &str,
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a Value, ApiError> {
    obj.get(key).ok_or_else(|| {
        let reason = format!("'{key}' is a required property");
        if field.is_empty() {
            ApiError::bad_request(reason)
        } else {
            invalid(field, &Value::Object(obj.clone()), reason)
        }
    })
}

/// A string of `min..=max` characters.
pub fn string<'a>(
    field: &str,
    value: &'a Value,
    min: usize,
    max: usize,
) -> Result<&'a str, ApiError> {
    let s = value
        .as_str()
        .ok_or_else(|| type_error(field, value, "'string'"))?;
    let n = s.chars().count();
    if n < min {
        return Err(invalid(
            field,
            value,
            format!("{} is too short", repr(value)),
        ));
    }
    if n > max {
        return Err(invalid(
            field,
            value,
            format!("{} is too long", repr(value)),
        ));
    }
    Ok(s)
}

/// Nova's `name` format: printable characters, no leading or trailing
/// whitespace, 1 to 255 characters.
pub fn name(field: &str, value: &Value) -> Result<String, ApiError> {
    let s = string(field, value, 1, 255)?;
    let printable = s.chars().all(|c| !c.is_control());
    let trimmed = s.trim() == s;
    if !printable || !trimmed {
        return Err(ApiError::bad_request(
            "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.",
        ));
    }
    Ok(s.to_owned())
}

/// Nova's boolean parameter: JSON booleans and the strings
/// oslo's `bool_from_string` knows.
pub fn boolean(field: &str, value: &Value) -> Result<bool, ApiError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => parse_bool(s).ok_or_else(|| {
            invalid(
                field,
                value,
                format!("{} is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']", repr(value)),
            )
        }),
        other => Err(type_error(field, other, "'boolean', 'string'")),
    }
}

/// oslo `bool_from_string(strict=True)`, without the error; the domain's
/// query filters read it too.
pub use crate::domain::parse_bool;

/// An integer given as a number or a string of digits, at least `min`
/// (Nova's `positive_integer` / `non_negative_integer`).
pub fn integer(field: &str, value: &Value, min: u64) -> Result<u64, ApiError> {
    let n = match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u,
            (None, Some(_)) => {
                return Err(invalid(
                    field,
                    value,
                    format!("{n} is less than the minimum of {min}"),
                ));
            }
            _ => return Err(type_error(field, value, "'integer', 'string'")),
        },
        Value::String(s) => {
            if s.is_empty() {
                return Err(invalid(
                    field,
                    value,
                    format!("{} is too short", repr(value)),
                ));
            }
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    field,
                    value,
                    format!("{} does not match '^[0-9]*$'", repr(value)),
                ));
            }
            s.parse::<u64>()
                .map_err(|_| invalid(field, value, format!("{} is too large", repr(value))))?
        }
        other => return Err(type_error(field, other, "'integer', 'string'")),
    };
    if n < min {
        return Err(invalid(
            field,
            value,
            format!("{} is less than the minimum of {min}", display(value)),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_reprs() {
        assert_eq!(repr(&json!(null)), "None");
        assert_eq!(repr(&json!(true)), "True");
        assert_eq!(repr(&json!("a'b")), "'a\\'b'");
        assert_eq!(repr(&json!({"a": [1, "x"]})), "{'a': [1, 'x']}");
        assert_eq!(display(&json!("abc")), "abc");
    }

    #[test]
    fn messages_name_the_field() {
        let e = string("name", &json!(""), 1, 255).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid input for field/attribute name. Value: . '' is too short"
        );
        let e = string("name", &json!(5), 1, 255).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"
        );
        let m = json!({"a": 1, "b": 2});
        let e = only("server", m.as_object().unwrap(), &["a"]).unwrap_err();
        assert!(e.message.contains("('b' was unexpected)"), "{}", e.message);
        let e = required("server", m.as_object().unwrap(), "name").unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid input for field/attribute server.")
        );
        assert!(e.message.ends_with("'name' is a required property"));
    }

    #[test]
    fn names_refuse_surrounding_whitespace() {
        assert_eq!(name("name", &json!("web 1")).unwrap(), "web 1");
        assert!(
            name("name", &json!(" web"))
                .unwrap_err()
                .message
                .contains("'name'")
        );
        assert!(
            name("name", &json!("a".repeat(256)))
                .unwrap_err()
                .message
                .contains("too long")
        );
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(integer("min_count", &json!(3), 1).unwrap(), 3);
        assert_eq!(integer("min_count", &json!("3"), 1).unwrap(), 3);
        let e = integer("min_count", &json!(0), 1).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid input for field/attribute min_count. Value: 0. 0 is less than the minimum of 1"
        );
        assert!(integer("min_count", &json!(-1), 1).is_err());
        assert!(
            integer("min_count", &json!(1.5), 1)
                .unwrap_err()
                .message
                .contains("min_count")
        );
        assert!(
            integer("min_count", &json!("x"), 1)
                .unwrap_err()
                .message
                .contains("min_count")
        );
        assert_eq!(integer("disk", &json!(0), 0).unwrap(), 0);
        assert!(boolean("b", &json!("yes")).unwrap());
        assert!(!boolean("b", &json!(false)).unwrap());
        assert!(boolean("b", &json!("maybe")).is_err());
    }
}
