//! `GET /` and `GET /v2.1[/]`: no authentication.

use axum::Json;
use serde_json::Value;

use crate::views::{self, Links};

pub async fn index(links: Links) -> Json<Value> {
    Json(views::versions::index(&links.base))
}

pub async fn v21(links: Links) -> Json<Value> {
    Json(views::versions::v21(&links.base))
}
