//! Keystone's list query: exact filters on an entity's attributes
//! (`?name=web`, `?enabled=false`), inexact ones (`?name__contains=`,
//! `__icontains`, `__startswith`, `__istartswith`, `__endswith`,
//! `__iendswith`), and paging by `limit` and `marker` (the id after which
//! a page starts), a cut list marked `"truncated": true` with a `next`
//! link, as `keystone/server/flask/common.py` builds its driver hints.
//! Pure: the routes hand it the query and the entities in id order.

use serde_json::{Value, json};

/// The most a page holds whatever `limit` asks (keystone's
/// `max_db_limit` default).
pub const MAX_LIMIT: usize = 1000;

/// One attribute a list may be filtered on.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Str(&'a str),
    Bool(bool),
    /// An attribute the entity has as `null` (a global role's
    /// `domain_id`): no exact or inexact filter matches it.
    Null,
}

/// A list query, parsed.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// A query keystone refuses (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQuery(pub String);

/// Keystone's `attr_as_boolean`: these spell false, anything else true.
fn as_bool(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "0" | "false" | "f" | "no" | "n" | "off"
    )
}

impl Query {
    pub fn new(pairs: Vec<(String, String)>) -> Result<Query, BadQuery> {
        let limit = match pairs.iter().find(|(k, _)| k == "limit") {
            None => None,
            Some((_, v)) => match v.parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(BadQuery(format!(
                        "Invalid input for field 'limit': '{v}' is not a positive integer."
                    )));
                }
                Ok(n) => Some(n.min(MAX_LIMIT)),
            },
        };
        let marker = pairs
            .iter()
            .find(|(k, _)| k == "marker")
            .map(|(_, v)| v.clone())
            .filter(|m| !m.is_empty());
        Ok(Query {
            pairs,
            limit,
            marker,
        })
    }

    /// Whether an entity with these attributes passes every filter the
    /// query names; keys naming no attribute are ignored, as keystone
    /// ignores unsupported filters.
    pub fn accepts(&self, fields: &[(&str, Field<'_>)]) -> bool {
        let field = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, f)| *f);
        self.pairs.iter().all(|(key, want)| {
            if let Some(f) = field(key) {
                return match f {
                    Field::Str(s) => s == want,
                    Field::Bool(b) => b == as_bool(want),
                    Field::Null => false,
                };
            }
            let Some((base, comparator)) = key.split_once("__") else {
                return true;
            };
            let Some(f) = field(base) else {
                return true;
            };
            let (comparator, case_sensitive) = match comparator.strip_prefix('i') {
                Some(c) => (c, false),
                None => (comparator, true),
            };
            let Field::Str(have) = f else {
                return false;
            };
            let (have, want) = if case_sensitive {
                (have.to_owned(), want.clone())
            } else {
                (have.to_lowercase(), want.to_lowercase())
            };
            match comparator {
                "contains" => have.contains(&want),
                "startswith" => have.starts_with(&want),
                "endswith" => have.ends_with(&want),
                // Keystone silently ignores comparators it does not know.
                _ => true,
            }
        })
    }

    /// One page of `items` (filtered, in id order, each with its id):
    /// those after the marker, at most `limit`, and whether more
    /// followed.
    pub fn page(&self, items: Vec<(String, Value)>) -> (Vec<Value>, bool) {
        let mut rest: Vec<(String, Value)> = match &self.marker {
            Some(m) => items.into_iter().filter(|(id, _)| id > m).collect(),
            None => items,
        };
        let truncated = self.limit.is_some_and(|l| rest.len() > l);
        if let Some(l) = self.limit {
            rest.truncate(l);
        }
        (rest.into_iter().map(|(_, v)| v).collect(), truncated)
    }

    /// The query of the page after one ending at `last_id`.
    pub fn next_query(&self, last_id: &str) -> String {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .cloned()
            .collect();
        pairs.push(("marker".into(), last_id.to_owned()));
        if let Some(l) = self.limit {
            pairs.push(("limit".into(), l.to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A collection body: `{key: items, "links": {...}}`, with
/// `"truncated": true` and a `next` link when the page was cut.
pub fn collection(
    key: &str,
    query: &Query,
    items: Vec<(String, Value)>,
    base: &str,
    path: &str,
) -> Value {
    let (page, truncated) = query.page(items);
    let self_link = format!("{base}/identity/v3/{path}");
    let mut body =
        json!({ key: page, "links": {"self": self_link, "previous": null, "next": null} });
    if truncated {
        let last_id = body[key]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(id) = last_id {
            body["links"]["next"] = json!(format!("{self_link}?{}", query.next_query(&id)));
        }
        body["truncated"] = json!(true);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::new(novalog_request::query_pairs(Some(s))).unwrap()
    }

    #[test]
    fn exact_and_inexact_filters_as_keystone() {
        let web = [
            ("name", Field::Str("WebServers")),
            ("enabled", Field::Bool(true)),
            ("domain_id", Field::Str("default")),
        ];
        assert!(q("name=WebServers").accepts(&web));
        assert!(!q("name=webservers").accepts(&web));
        assert!(q("name__contains=Serv").accepts(&web));
        assert!(!q("name__contains=serv").accepts(&web));
        assert!(q("name__icontains=serv").accepts(&web));
        assert!(q("name__startswith=Web&name__iendswith=SERVERS").accepts(&web));
        assert!(!q("name__startswith=web").accepts(&web));
        assert!(q("name__istartswith=web").accepts(&web));
        assert!(!q("enabled=false").accepts(&web));
        assert!(q("enabled=1&unknown=x&limit=3").accepts(&web));
        assert!(!q("domain_id=other").accepts(&web));
        assert!(!q("domain_id=x").accepts(&[("domain_id", Field::Null)]));
    }

    #[test]
    fn a_limited_page_is_truncated_and_continues_after_its_marker() {
        let items = |ids: &[&str]| -> Vec<(String, Value)> {
            ids.iter()
                .map(|i| ((*i).to_owned(), json!({"id": i})))
                .collect()
        };
        let body = collection(
            "users",
            &q("limit=2"),
            items(&["a", "b", "c"]),
            "http://x",
            "users",
        );
        assert_eq!(body["users"], json!([{"id": "a"}, {"id": "b"}]));
        assert_eq!(body["truncated"], json!(true));
        assert_eq!(
            body["links"]["next"],
            json!("http://x/identity/v3/users?marker=b&limit=2")
        );
        let next = collection(
            "users",
            &q("marker=b&limit=2"),
            items(&["a", "b", "c"]),
            "http://x",
            "users",
        );
        assert_eq!(next["users"], json!([{"id": "c"}]));
        assert!(next.get("truncated").is_none());
        assert_eq!(next["links"]["next"], Value::Null);
        assert!(Query::new(novalog_request::query_pairs(Some("limit=x"))).is_err());
        assert!(Query::new(novalog_request::query_pairs(Some("limit=0"))).is_err());
    }
}
