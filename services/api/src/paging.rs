//! Paging as Nova does it (`nova/api/openstack/common.py`): a page holds
//! at most `[api] max_limit` items whatever the client asks, and a full
//! page carries a `next` link that repeats the request's own query with
//! the last item as the marker. Pure functions; each controller parses its
//! own `limit` (Nova's query schemas word their errors per resource) and
//! hands the numbers here.

use serde_json::{Value, json};

use crate::views::Links;

/// Nova's `get_limit_and_marker`, which the domain's lists apply.
pub use crate::domain::page_size;

/// Nova's `limited` (server groups): `offset` then at most `limit` items,
/// where a `limit` of 0 or none means `max_limit`.
pub fn limited<T>(items: Vec<T>, offset: usize, limit: Option<usize>, max_limit: usize) -> Vec<T> {
    let limit = match limit {
        Some(0) | None => max_limit,
        Some(l) => l.min(max_limit),
    };
    items.into_iter().skip(offset).take(limit).collect()
}

/// Nova's `_get_collection_links`: `[{"rel": "next", "href": ...}]` when
/// the page is full (`count` equals the client's `limit` capped at
/// `max_limit`, or `max_limit` without one), else `None`. `params` is the
/// request's query as sent (`None` values included, as Nova keeps them).
pub fn next_links(
    links: &Links,
    params: &[(String, String)],
    collection: &str,
    count: usize,
    last_id: Option<&str>,
    max_limit: usize,
) -> Option<Value> {
    // Nova reads `limit` as webob does: the last one given.
    let requested = params
        .iter()
        .rev()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| crate::domain::non_negative(v));
    let max_items = page_size(requested, max_limit);
    let last = last_id?;
    (max_items > 0 && count == max_items).then(|| {
        json!([{
            "rel": "next",
            "href": next_href(links, params, collection, last),
        }])
    })
}

/// Nova's `_get_next_link`: the query's pairs sorted (one value per key,
/// the last of equal keys, at the place of the first), `marker` set to
/// `last_id`, urlencoded as Python's `urlencode` does.
pub fn next_href(
    links: &Links,
    params: &[(String, String)],
    collection: &str,
    last_id: &str,
) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, v) in sorted {
        match query.iter_mut().find(|(qk, _)| qk == k) {
            Some(slot) => slot.1 = v.clone(),
            None => query.push((k.clone(), v.clone())),
        }
    }
    match query.iter_mut().find(|(k, _)| k == "marker") {
        Some(slot) => slot.1 = last_id.to_owned(),
        None => query.push(("marker".into(), last_id.to_owned())),
    }
    let encoded: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect();
    format!("{}/v2.1/{collection}?{}", links.base, encoded.join("&"))
}

/// Python's `urllib.parse.quote_plus`: letters, digits and `_.-~` as they
/// are, a space as `+`, every other byte `%XX`.
fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn page_size_is_the_limit_capped_at_max_limit() {
        assert_eq!(page_size(None, 1000), 1000);
        assert_eq!(page_size(Some(5), 1000), 5);
        assert_eq!(page_size(Some(5000), 1000), 1000);
        assert_eq!(page_size(Some(0), 1000), 0);
    }

    #[test]
    fn limited_treats_zero_as_max_limit() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(limited(items.clone(), 0, None, 4), vec![0, 1, 2, 3]);
        assert_eq!(limited(items.clone(), 0, Some(0), 4), vec![0, 1, 2, 3]);
        assert_eq!(limited(items.clone(), 8, Some(3), 4), vec![8, 9]);
        assert_eq!(limited(items, 2, Some(2), 4), vec![2, 3]);
    }

    #[test]
    fn a_full_page_links_to_the_next_as_nova_builds_it() {
        let links = Links::new("http://cloud:8774");
        let q = p(&[
            ("name", "a b"),
            ("deleted", "true"),
            ("all_tenants", "1"),
            ("flavor", "None"),
        ]);
        // No limit: full at max_limit.
        let l = next_links(&links, &q, "servers/detail", 3, Some("u3"), 3).unwrap();
        assert_eq!(
            l,
            json!([{"rel": "next", "href":
                "http://cloud:8774/v2.1/servers/detail?all_tenants=1&deleted=true&flavor=None&name=a+b&marker=u3"}])
        );
        assert!(next_links(&links, &q, "servers", 2, Some("u2"), 3).is_none());
        // A limit above max_limit pages at max_limit; the marker keeps its place.
        let q = p(&[("marker", "u0"), ("limit", "50")]);
        let l = next_links(&links, &q, "flavors", 3, Some("u3"), 3).unwrap();
        assert_eq!(
            l[0]["href"],
            "http://cloud:8774/v2.1/flavors?limit=50&marker=u3"
        );
        assert!(next_links(&links, &p(&[("limit", "0")]), "flavors", 0, None, 3).is_none());
        assert!(next_links(&links, &p(&[("limit", "2")]), "x", 2, Some("a/b"), 3).is_some());
        assert_eq!(
            next_href(&links, &p(&[("a", "1"), ("a", "2")]), "x", "a/b"),
            "http://cloud:8774/v2.1/x?a=2&marker=a%2Fb"
        );
    }
}
