//! `/v2.1/extensions[/{alias}]` (nova's extension_info controller): the
//! fixed list of the v2 extensions the v2.1 API is compatible with, any
//! caller. The list is Nova's (`data/nova-extensions.json`: alias, name,
//! description; the other fields are the same for every entry). The legacy
//! `/v2` endpoint adds the one v2-only entry.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

use crate::auth::Context;
use crate::error::{ApiError, Result};
use crate::microversion::ApiVersion;

/// `[alias, name, description]` of every extension, in Nova's order.
static LIST: LazyLock<Vec<[String; 3]>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../data/nova-extensions.json"))
        .expect("the extension list is valid JSON")
});

/// The extension only the legacy v2 endpoint lists.
const LEGACY_V2_ONLY: [&str; 3] = [
    "OS-EXT-VIF-NET",
    "ExtendedVIFNet",
    "Adds network id parameter to the virtual interface list.",
];

fn render(alias: &str, name: &str, description: &str) -> Value {
    json!({
        "alias": alias,
        "description": description,
        "links": [],
        "name": name,
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "updated": "2014-12-03T00:00:00Z",
    })
}

/// Every extension the endpoint lists: the legacy v2 one (version 2.0)
/// adds its own entry and sorts by alias.
fn all(version: ApiVersion) -> Vec<Value> {
    let mut list: Vec<(String, Value)> = LIST
        .iter()
        .map(|[a, n, d]| (a.clone(), render(a, n, d)))
        .collect();
    if version.is_legacy_v2() {
        let [a, n, d] = LEGACY_V2_ONLY;
        list.push((a.to_owned(), render(a, n, d)));
        list.sort_by(|x, y| x.0.cmp(&y.0));
    }
    list.into_iter().map(|(_, v)| v).collect()
}

/// `GET /extensions` (`os_compute_api:extensions`: any caller).
pub async fn index(_ctx: Context, version: ApiVersion) -> Json<Value> {
    Json(json!({ "extensions": all(version) }))
}

/// `GET /extensions/{alias}`.
pub async fn show(
    _ctx: Context,
    version: ApiVersion,
    Path(alias): Path<String>,
) -> Result<Json<Value>> {
    all(version)
        .into_iter()
        .find(|e| e["alias"] == alias.as_str())
        .map(|e| Json(json!({ "extension": e })))
        .ok_or_else(|| ApiError::not_found("The resource could not be found."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_novas_and_legacy_v2_adds_its_own_entry_sorted() {
        let v21 = all(ApiVersion::new(2, 1));
        assert_eq!(v21.len(), 99);
        assert_eq!(v21[0]["alias"], "NMN");
        assert!(v21.iter().all(|e| e["alias"] != "OS-EXT-VIF-NET"));
        let v2 = all(ApiVersion::LEGACY_V2);
        assert_eq!(v2.len(), 100);
        let aliases: Vec<&str> = v2.iter().map(|e| e["alias"].as_str().unwrap()).collect();
        assert!(aliases.is_sorted());
        assert!(aliases.contains(&"OS-EXT-VIF-NET"));
    }
}
