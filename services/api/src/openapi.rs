//! `GET /openapi.json`: an OpenAPI 3.0 description of the Compute API
//! routes this service serves, built from [`OPERATIONS`]. A test checks
//! that every `/v2.1` route of [`crate::app::router`] is in the table and
//! that every operation in the table is routed, so the document cannot
//! drift from the router.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::microversion::{MAX_VERSION, MIN_VERSION};

/// One operation: method, path (axum's `{param}` syntax), summary, who may
/// call it (Nova's default policy), its success status, and microversion
/// notes.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub policy: &'static str,
    pub status: u16,
    pub versions: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    policy: &'static str,
    status: u16,
    versions: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        policy,
        status,
        versions,
    }
}

const ANY: &str = "any authenticated user";
const MEMBER: &str = "project member (own project), admin";
const ADMIN: &str = "admin";
const OWNER: &str = "the key's user, admin";

/// Every Compute API operation served.
pub const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/v2.1",
        "Version document of v2.1 (no token)",
        "none",
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/",
        "Version document of v2.1 (no token)",
        "none",
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/servers",
        "List servers (id, name, links)",
        MEMBER,
        200,
        "2.26 tag filters; 2.38 unknown status 400",
    ),
    op(
        "post",
        "/v2.1/servers",
        "Create one or more servers",
        MEMBER,
        202,
        "2.19 description; 2.37 networks required; 2.42 device tags; 2.52 tags; 2.57 no personality",
    ),
    op(
        "get",
        "/v2.1/servers/detail",
        "List servers with details",
        MEMBER,
        200,
        "2.47 embedded flavor",
    ),
    op(
        "get",
        "/v2.1/servers/{id}",
        "Show a server",
        MEMBER,
        200,
        "2.3 extended attributes; 2.9 locked; 2.16 host_status; 2.19 description; 2.26 tags; 2.47 embedded flavor",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}",
        "Delete a server",
        MEMBER,
        204,
        "",
    ),
    op(
        "get",
        "/v2.1/flavors",
        "List flavors",
        ANY,
        200,
        "2.55 description",
    ),
    op(
        "post",
        "/v2.1/flavors",
        "Create a flavor",
        ADMIN,
        200,
        "2.55 description; 2.61 extra_specs in the view",
    ),
    op(
        "get",
        "/v2.1/flavors/detail",
        "List flavors with details",
        ANY,
        200,
        "2.55 description; 2.61 extra_specs",
    ),
    op(
        "get",
        "/v2.1/flavors/{id}",
        "Show a flavor",
        ANY,
        200,
        "2.55 description; 2.61 extra_specs",
    ),
    op(
        "put",
        "/v2.1/flavors/{id}",
        "Update a flavor's description",
        ADMIN,
        200,
        "from 2.55",
    ),
    op(
        "delete",
        "/v2.1/flavors/{id}",
        "Delete a flavor",
        ADMIN,
        202,
        "",
    ),
    op(
        "get",
        "/v2.1/flavors/{id}/os-extra_specs",
        "List a flavor's extra specs",
        ANY,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/flavors/{id}/os-extra_specs",
        "Set extra specs",
        ADMIN,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/flavors/{id}/os-extra_specs/{key}",
        "Show one extra spec",
        ANY,
        200,
        "",
    ),
    op(
        "put",
        "/v2.1/flavors/{id}/os-extra_specs/{key}",
        "Set one extra spec",
        ADMIN,
        200,
        "",
    ),
    op(
        "delete",
        "/v2.1/flavors/{id}/os-extra_specs/{key}",
        "Delete one extra spec",
        ADMIN,
        202,
        "",
    ),
    op(
        "get",
        "/v2.1/flavors/{id}/os-flavor-access",
        "List the projects given a non-public flavor",
        ADMIN,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/flavors/{id}/action",
        "addTenantAccess / removeTenantAccess",
        ADMIN,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-server-groups",
        "List server groups",
        MEMBER,
        200,
        "2.13 project_id, user_id; 2.64 policy, rules",
    ),
    op(
        "post",
        "/v2.1/os-server-groups",
        "Create a server group",
        MEMBER,
        200,
        "2.15 soft policies; 2.64 policy, rules",
    ),
    op(
        "get",
        "/v2.1/os-server-groups/{id}",
        "Show a server group",
        MEMBER,
        200,
        "2.64 policy, rules",
    ),
    op(
        "delete",
        "/v2.1/os-server-groups/{id}",
        "Delete a server group",
        MEMBER,
        204,
        "",
    ),
    op(
        "get",
        "/v2.1/os-aggregates",
        "List host aggregates",
        ADMIN,
        200,
        "2.41 uuid",
    ),
    op(
        "post",
        "/v2.1/os-aggregates",
        "Create a host aggregate",
        ADMIN,
        200,
        "2.41 uuid",
    ),
    op(
        "get",
        "/v2.1/os-aggregates/{id}",
        "Show a host aggregate",
        ADMIN,
        200,
        "2.41 uuid",
    ),
    op(
        "put",
        "/v2.1/os-aggregates/{id}",
        "Rename or re-zone an aggregate",
        ADMIN,
        200,
        "2.41 uuid",
    ),
    op(
        "delete",
        "/v2.1/os-aggregates/{id}",
        "Delete an aggregate",
        ADMIN,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/os-aggregates/{id}/action",
        "add_host / remove_host / set_metadata",
        ADMIN,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-availability-zone",
        "List availability zones",
        ANY,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-availability-zone/detail",
        "List zones with their hosts",
        ADMIN,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-keypairs",
        "List the user's keypairs",
        OWNER,
        200,
        "2.2 type; 2.10 user_id; 2.35 limit, marker",
    ),
    op(
        "post",
        "/v2.1/os-keypairs",
        "Import (public_key) or generate a keypair",
        OWNER,
        201,
        "200 at 2.1; 2.2 type; 2.10 user_id; 2.92 public_key required",
    ),
    op(
        "get",
        "/v2.1/os-keypairs/{name}",
        "Show a keypair",
        OWNER,
        200,
        "2.10 user_id",
    ),
    op(
        "delete",
        "/v2.1/os-keypairs/{name}",
        "Delete a keypair",
        OWNER,
        204,
        "202 at 2.1; 2.10 user_id",
    ),
    op(
        "get",
        "/v2.1/os-services",
        "List compute services (state from heartbeats)",
        ADMIN,
        200,
        "2.11 forced_down; 2.53 uuid ids",
    ),
    op(
        "put",
        "/v2.1/os-services/disable",
        "Disable a service",
        ADMIN,
        200,
        "until 2.52",
    ),
    op(
        "put",
        "/v2.1/os-services/enable",
        "Enable a service",
        ADMIN,
        200,
        "until 2.52",
    ),
    op(
        "put",
        "/v2.1/os-services/disable-log-reason",
        "Disable a service with a reason",
        ADMIN,
        200,
        "until 2.52",
    ),
    op(
        "put",
        "/v2.1/os-services/force-down",
        "Force a service down (or up)",
        ADMIN,
        200,
        "2.11 to 2.52",
    ),
    op(
        "put",
        "/v2.1/os-services/{id}",
        "Update a service: status, disabled_reason, forced_down",
        ADMIN,
        200,
        "from 2.53",
    ),
    op(
        "delete",
        "/v2.1/os-services/{id}",
        "Delete a service record",
        ADMIN,
        204,
        "2.53 uuid ids",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors",
        "List hypervisors",
        ADMIN,
        200,
        "2.33 limit, marker; 2.53 uuid ids, hypervisor_hostname_pattern, with_servers",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors/detail",
        "List hypervisors with details",
        ADMIN,
        200,
        "2.28 cpu_info object; 2.88 resource fields gone, uptime",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors/statistics",
        "Sums over every hypervisor",
        ADMIN,
        200,
        "until 2.87",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors/{id}",
        "Show a hypervisor",
        ADMIN,
        200,
        "2.53 uuid ids, with_servers",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors/{id}/uptime",
        "A hypervisor's uptime",
        ADMIN,
        200,
        "until 2.87",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors/{id}/servers",
        "Hypervisors matching a name, with servers",
        ADMIN,
        200,
        "until 2.52",
    ),
    op(
        "get",
        "/v2.1/os-hypervisors/{id}/search",
        "Hypervisors matching a name",
        ADMIN,
        200,
        "until 2.52",
    ),
    op(
        "put",
        "/v2.1/servers/{id}",
        "Update a server's name or description",
        MEMBER,
        200,
        "2.19 description",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/metadata",
        "List a server's metadata",
        MEMBER,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/servers/{id}/metadata",
        "Merge metadata items into a server's",
        MEMBER,
        200,
        "",
    ),
    op(
        "put",
        "/v2.1/servers/{id}/metadata",
        "Replace a server's metadata",
        MEMBER,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/metadata/{key}",
        "Show one metadata item",
        MEMBER,
        200,
        "",
    ),
    op(
        "put",
        "/v2.1/servers/{id}/metadata/{key}",
        "Set one metadata item",
        MEMBER,
        200,
        "",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/metadata/{key}",
        "Delete one metadata item",
        MEMBER,
        204,
        "",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/tags",
        "List a server's tags",
        MEMBER,
        200,
        "2.26",
    ),
    op(
        "put",
        "/v2.1/servers/{id}/tags",
        "Replace a server's tags",
        MEMBER,
        200,
        "2.26",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/tags",
        "Delete every tag of a server",
        MEMBER,
        204,
        "2.26",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/tags/{tag}",
        "Check one tag",
        MEMBER,
        204,
        "2.26",
    ),
    op(
        "put",
        "/v2.1/servers/{id}/tags/{tag}",
        "Add one tag",
        MEMBER,
        201,
        "2.26",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/tags/{tag}",
        "Delete one tag",
        MEMBER,
        204,
        "2.26",
    ),
    op(
        "post",
        "/v2.1/servers/{id}/action",
        "Server action: reboot, os-stop, os-start, pause, unpause, suspend, resume, lock, unlock, resize, confirmResize, revertResize, migrate, rebuild, evacuate, os-migrateLive; forceDelete and restore answer 409 (no soft delete)",
        MEMBER,
        202,
        "2.56 migrate host; 2.73 locked_reason; admin only: migrate, evacuate, os-migrateLive",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-instance-actions",
        "List a server's instance actions",
        MEMBER,
        200,
        "2.21 deleted servers; 2.58 paging and changes-since",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-instance-actions/{request_id}",
        "Show an instance action with its events",
        MEMBER,
        200,
        "2.51 events for owners",
    ),
    op(
        "get",
        "/v2.1/os-quota-sets/{project}",
        "Show a project's quotas",
        MEMBER,
        200,
        "2.36, 2.57 fields removed",
    ),
    op(
        "put",
        "/v2.1/os-quota-sets/{project}",
        "Update a project's quotas",
        ADMIN,
        200,
        "",
    ),
    op(
        "delete",
        "/v2.1/os-quota-sets/{project}",
        "Revert a project's quotas to the defaults",
        ADMIN,
        202,
        "",
    ),
    op(
        "get",
        "/v2.1/os-quota-sets/{project}/detail",
        "Show a project's quotas with usage",
        MEMBER,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-quota-sets/{project}/defaults",
        "Show the default quotas",
        MEMBER,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/limits",
        "Absolute limits and usage of the caller's project",
        MEMBER,
        200,
        "2.39, 2.57 fields removed",
    ),
    op(
        "get",
        "/v2.1/os-migrations",
        "List migrations",
        ADMIN,
        200,
        "2.23 migration_type; 2.59 paging; 2.80 user and project",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/migrations",
        "List a server's in-progress live migrations",
        ADMIN,
        200,
        "2.23",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/migrations/{migration_id}",
        "Show a server's in-progress live migration",
        ADMIN,
        200,
        "2.23",
    ),
];

fn params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        let mut description = format!("Policy: {}.", o.policy);
        if !o.versions.is_empty() {
            description.push_str(&format!(" Microversions: {}.", o.versions));
        }
        let mut responses = json!({
            o.status.to_string(): {
                "description": "Success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        });
        for (code, what) in [
            ("400", "Invalid request (badRequest)"),
            ("401", "Missing or invalid token"),
            ("403", "Policy forbids it (forbidden)"),
            ("404", "Not found (itemNotFound)"),
            ("406", "Microversion out of range"),
            ("409", "Conflict (conflictingRequest)"),
            ("413", "Request body too large (overLimit)"),
        ] {
            responses[code] = json!({
                "description": what,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fault"}}},
            });
        }
        let mut operation = json!({
            "operationId": format!("{}:{}", o.method, o.path),
            "summary": o.summary,
            "description": description,
            "parameters": params(o.path),
            "responses": responses,
        });
        if matches!(o.method, "post" | "put") {
            operation["requestBody"] = json!({
                "required": false,
                "content": {"application/json": {"schema": {"type": "object"}}},
            });
        }
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Novalog Compute API",
            "version": format!("{MIN_VERSION} - {MAX_VERSION}"),
            "description": "Nova's Compute API v2.1 as Novalog serves it. Select a microversion with `OpenStack-API-Version: compute X.Y`; authenticate with `X-Auth-Token` (Identity v3 at /identity/v3).",
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
            "schemas": {"Fault": {
                "type": "object",
                "description": "{\"<faultName>\": {\"code\": N, \"message\": \"...\"}}",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
                },
            }},
        },
        "security": [{"token": []}],
        "paths": paths,
    })
}

/// `GET /openapi.json` (no token needed).
pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `/v2.1...` route strings in the router's source.
    fn routed_paths() -> Vec<String> {
        let src = include_str!("app.rs");
        src.split('"')
            .filter(|s| s.starts_with("/v2.1"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_routed_path_is_documented() {
        let doc = document();
        for path in routed_paths() {
            assert!(
                doc["paths"].get(&path).is_some(),
                "{path} is routed but missing from openapi::OPERATIONS"
            );
        }
        assert_eq!(doc["info"]["version"], format!("2.1 - {MAX_VERSION}"));
        let create = &doc["paths"]["/v2.1/servers"]["post"];
        assert_eq!(create["responses"]["202"]["description"], "Success");
        assert_eq!(
            doc["paths"]["/v2.1/os-keypairs/{name}"]["get"]["parameters"][0]["name"],
            "name"
        );
    }
}
