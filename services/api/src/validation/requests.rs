//! The request body schemas of every route that takes a JSON body, per
//! microversion range, as JSON-Schema values (Nova's
//! `nova/api/openstack/compute/schemas/*.py` in the same shape). They
//! are used twice: [`crate::http::JsonBody`] validates every body against
//! the schema of its route and version before the handler sees it, and
//! `GET /openapi.json` publishes them, so the document says exactly what
//! is enforced. The handlers' own parsers run after, for what a schema
//! cannot say (a flavor that must exist, a name that must be printable)
//! and to build the typed request.
//!
//! Every numeric field carries Nova's bounds (`db.MAX_INT` = 2^31 - 1 on
//! flavor and quota values, counts and sizes), so an out-of-range number
//! is a 400 here and never reaches arithmetic.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::microversion::{ApiVersion, MAX_VERSION, MIN_VERSION};

/// Nova's `db.MAX_INT`: the ceiling of every integer it stores.
pub const MAX_INT: i64 = 2_147_483_647;
/// Nova's `MAX_TAGS_PER_INSTANCE`.
pub const MAX_TAGS: u64 = 50;

/// The schemas of one route: the body schema changes at each version of
/// `since` (ascending; the first is where the route takes a body at
/// all), up to `until` inclusive.
pub struct RouteSchema {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// The route, in axum's `{param}` syntax.
    pub path: &'static str,
    pub since: &'static [(u32, u32)],
    pub until: ApiVersion,
    /// The schema in force from a version of `since` on.
    pub build: fn(ApiVersion) -> Value,
}

impl RouteSchema {
    /// `(first, last, schema)` for every range with its own schema.
    pub fn ranges(&self) -> Vec<(ApiVersion, ApiVersion, Value)> {
        let starts: Vec<ApiVersion> = self
            .since
            .iter()
            .map(|(a, b)| ApiVersion::new(*a, *b))
            .filter(|start| *start <= self.until)
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(i, start)| {
                let end = starts.get(i + 1).map_or(self.until, |next| previous(*next));
                (*start, end, (self.build)(*start))
            })
            .collect()
    }
}

/// The version just before `v` (2.19 → 2.18).
fn previous(v: ApiVersion) -> ApiVersion {
    ApiVersion::new(v.major, v.minor.saturating_sub(1))
}

const fn route(
    method: &'static str,
    path: &'static str,
    since: &'static [(u32, u32)],
    build: fn(ApiVersion) -> Value,
) -> RouteSchema {
    RouteSchema {
        method,
        path,
        since,
        until: MAX_VERSION,
        build,
    }
}

const ALL: &[(u32, u32)] = &[(2, 1)];

// ---- Nova's parameter types (nova/api/validation/parameter_types.py) ----

/// An integer (or a string of digits) in `min..=MAX_INT`.
fn integer(min: i64) -> Value {
    json!({"type": ["integer", "string"], "pattern": "^[0-9]*$", "minLength": 1,
           "minimum": min, "maximum": MAX_INT})
}

/// A quota value: -1 (unlimited) to `MAX_INT`.
fn quota() -> Value {
    json!({"type": ["integer", "string"], "pattern": "^-?[0-9]+$",
           "minimum": -1, "maximum": MAX_INT})
}

fn string(min: u64, max: u64) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max})
}

fn nullable_string(min: u64, max: u64) -> Value {
    json!({"type": ["string", "null"], "minLength": min, "maxLength": max})
}

/// Nova's `name`: 1 to 255 characters (printable, trimmed: checked by
/// the handler, whose message names the rule).
fn name() -> Value {
    string(1, 255)
}

/// Nova's `boolean`: JSON booleans, or the strings oslo accepts.
fn boolean() -> Value {
    json!({"type": ["boolean", "string"]})
}

/// Nova's `metadata`: keys of 1 to 255 of `[a-zA-Z0-9-_:. ]`, values
/// strings of at most 255.
fn metadata() -> Value {
    json!({"type": "object",
           "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": string(0, 255)},
           "additionalProperties": false})
}

fn tag() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"})
}

fn tags() -> Value {
    json!({"type": "array", "maxItems": MAX_TAGS, "items": tag()})
}

/// An object with these properties, these required, nothing else.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required,
           "additionalProperties": false})
}

// ---- servers (schemas/servers.py) ----

fn server_create(v: ApiVersion) -> Value {
    let mut server = json!({
        "name": name(),
        "imageRef": {"description": "an image uuid, an image link, or empty with block_device_mapping_v2"},
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": metadata(),
        "networks": {"description": "\"auto\", \"none\", or a list of {uuid, port, fixed_ip[, tag]}"},
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "availability_zone": name(),
        "block_device_mapping": {"type": "array"},
        "block_device_mapping_v2": {"type": "array", "items": {"type": "object", "properties": {
            "source_type": {"enum": ["volume", "image", "snapshot", "blank"]},
            "destination_type": {"enum": ["local", "volume"]},
            "boot_index": {"type": ["integer", "string", "null"]},
            "volume_size": integer(0),
        }}},
        "config_drive": boolean(),
        "key_name": name(),
        "min_count": integer(1),
        "max_count": integer(1),
        "return_reservation_id": boolean(),
        "security_groups": {"type": "array", "items": object(json!({"name": name()}), &[])},
        "user_data": {"type": "string", "maxLength": 65535},
    });
    if !v.at_least(2, 57) {
        server["personality"] = json!({"type": "array"});
    }
    if v.at_least(2, 19) {
        server["description"] = nullable_string(0, 255);
    }
    if v.at_least(2, 52) {
        server["tags"] = tags();
    }
    if v.at_least(2, 63) {
        server["trusted_image_certificates"] = trusted_certs();
    }
    if v.at_least(2, 67) {
        server["block_device_mapping_v2"]["items"]["properties"]["volume_type"] =
            nullable_string(0, 255);
    }
    if v.at_least(2, 74) {
        server["host"] = fqdn();
        server["hypervisor_hostname"] = fqdn();
    }
    if v.at_least(2, 90) {
        server["hostname"] = guest_hostname(v);
    }
    let mut required = vec!["name", "flavorRef"];
    if v.at_least(2, 37) {
        required.push("networks");
    }
    object(
        json!({
            "server": object(server, &required),
            "os:scheduler_hints": {"type": "object"},
            "OS-SCH-HNT:scheduler_hints": {"type": "object"},
        }),
        &["server"],
    )
}

/// Nova's `trusted_certs` (2.63): null, or 1 to 50 distinct non-empty ids.
fn trusted_certs() -> Value {
    json!({"type": ["array", "null"], "minItems": 1, "maxItems": 50, "uniqueItems": true,
           "items": {"type": "string", "minLength": 1}})
}

/// Nova's `fqdn`.
fn fqdn() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"})
}

/// Nova's `hostname` (2.90), its `fqdn` from 2.94.
fn guest_hostname(v: ApiVersion) -> Value {
    if v.at_least(2, 94) {
        fqdn()
    } else {
        json!({"type": "string", "minLength": 2, "maxLength": 63,
               "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"})
    }
}

fn server_update(v: ApiVersion) -> Value {
    let mut server = json!({
        "name": name(),
        "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
    });
    if v.at_least(2, 19) {
        server["description"] = nullable_string(0, 255);
    }
    if v.at_least(2, 90) {
        server["hostname"] = guest_hostname(v);
    }
    object(json!({"server": object(server, &[])}), &["server"])
}

fn metadata_body(_: ApiVersion) -> Value {
    // `required` is left to the handler, which names an unknown key
    // before a missing one.
    object(json!({"metadata": metadata()}), &[])
}

fn meta_item(_: ApiVersion) -> Value {
    let mut meta = metadata();
    meta["minProperties"] = json!(1);
    object(json!({"meta": meta}), &["meta"])
}

fn tags_body(_: ApiVersion) -> Value {
    object(json!({"tags": tags()}), &["tags"])
}

fn host() -> Value {
    nullable_string(1, 255)
}

/// The actions: the body's one key names the action (an unknown one is
/// the handler's "There is no such action").
fn server_action(v: ApiVersion) -> Value {
    let rebuild_keys = {
        let mut r = json!({
            "imageRef": string(0, 255),
            "name": name(),
            "metadata": metadata(),
            "adminPass": string(0, 255),
            "preserve_ephemeral": boolean(),
            "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
            "accessIPv4": {"type": "string", "format": "ipv4"},
            "accessIPv6": {"type": "string", "format": "ipv6"},
        });
        if v.at_least(2, 19) {
            r["description"] = nullable_string(0, 255);
        }
        if v.at_least(2, 54) {
            r["key_name"] = nullable_string(1, 255);
        }
        if v.at_least(2, 57) {
            r["user_data"] = json!({"type": ["string", "null"], "maxLength": 65535});
        } else {
            r["personality"] = json!({"type": "array"});
        }
        if v.at_least(2, 63) {
            r["trusted_image_certificates"] = trusted_certs();
        }
        if v.at_least(2, 90) {
            r["hostname"] = guest_hostname(v);
        }
        r
    };
    let migrate = if v.at_least(2, 56) {
        json!({"type": ["object", "null"], "properties": {"host": host()},
               "additionalProperties": false})
    } else {
        // Nova validates `migrate` only from 2.56: any value before.
        json!({})
    };
    let mut evacuate = json!({"host": host(), "adminPass": string(0, 255)});
    if !v.at_least(2, 14) {
        evacuate["onSharedStorage"] = boolean();
    }
    // `force` from 2.29 (evacuate) and 2.30 (live) until 2.68 drops it.
    if v.at_least(2, 29) && !v.at_least(2, 68) {
        evacuate["force"] = boolean();
    }
    let mut live = json!({"host": host(), "block_migration": boolean()});
    if !v.at_least(2, 25) {
        live["disk_over_commit"] = boolean();
    }
    if v.at_least(2, 30) && !v.at_least(2, 68) {
        live["force"] = boolean();
    }
    let nothing = json!({"type": "null"});
    let mut action = json!({"properties": {
        "reboot": object(json!({"type": {"enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}}), &["type"]),
        "os-stop": {}, "os-start": {}, "pause": {}, "unpause": {},
        "suspend": {}, "resume": {}, "lock": {}, "unlock": {},
        "resize": object(json!({"flavorRef": {"type": ["string", "integer"], "minLength": 1},
                                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]}}), &["flavorRef"]),
        "confirmResize": nothing,
        "revertResize": nothing,
        "migrate": migrate,
        "rebuild": object(rebuild_keys, &["imageRef"]),
        "evacuate": object(evacuate, &[]),
        "os-migrateLive": object(live, &["block_migration", "host"]),
        // Nova's schemas leave these open (a TODO there restricts them
        // to null in some future version): `{}` passes.
        "forceDelete": {},
        "restore": {},
    }});
    // Gone from 2.6 (remote-consoles instead).
    if !v.at_least(2, 6) {
        action["properties"]["os-getVNCConsole"] = object(
            json!({"type": {"type": "string", "enum": ["novnc", "xvpvnc"]}}),
            &["type"],
        );
    }
    action
}

// ---- remote consoles (schemas/remote_consoles.py) ----

fn remote_console(v: ApiVersion) -> Value {
    let (mut protocols, mut types) = (
        vec!["vnc", "spice", "rdp", "serial"],
        vec!["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"],
    );
    if v.at_least(2, 8) {
        protocols.push("mks");
        types.push("webmks");
    }
    let console = object(
        json!({
            "protocol": {"type": "string", "enum": protocols},
            "type": {"type": "string", "enum": types},
        }),
        &["protocol", "type"],
    );
    object(json!({"remote_console": console}), &["remote_console"])
}

// ---- quotas (schemas/quota_sets.py) ----

fn quota_update(v: ApiVersion) -> Value {
    let removed: &[&str] = if v.at_least(2, 57) {
        &[
            "fixed_ips",
            "floating_ips",
            "security_group_rules",
            "security_groups",
            "injected_files",
            "injected_file_content_bytes",
            "injected_file_path_bytes",
        ]
    } else if v.at_least(2, 36) {
        &[
            "fixed_ips",
            "floating_ips",
            "security_group_rules",
            "security_groups",
        ]
    } else {
        &[]
    };
    quota_body("quota_set", removed, true)
}

/// `{root: {resource: quota, ...}}` without the `removed` resources, with
/// `force` where `with_force`.
fn quota_body(root: &str, removed: &[&str], with_force: bool) -> Value {
    let mut props = serde_json::Map::new();
    for r in novalog_schemas::quota::RESOURCES {
        if !removed.contains(r) {
            props.insert((*r).to_owned(), quota());
        }
    }
    if with_force {
        props.insert("force".into(), boolean());
    }
    let mut body = serde_json::Map::new();
    body.insert(root.to_owned(), object(Value::Object(props), &[]));
    object(Value::Object(body), &[root])
}

/// `PUT /os-quota-class-sets/{class}` (schemas/quota_classes.py): the
/// nova-network resources go at 2.50, the injected files at 2.57.
fn quota_class_update(v: ApiVersion) -> Value {
    use crate::controllers::quota_sets::{V236, V257};
    let removed = if v.at_least(2, 57) {
        V257
    } else if v.at_least(2, 50) {
        V236
    } else {
        &[]
    };
    quota_body("quota_class_set", removed, false)
}

// ---- networks (schemas/networks.py) ----

/// The bodies of the nova-network writes Nova removed: any JSON (`{}`),
/// answered 410 whatever they hold.
fn removed_network_write(_: ApiVersion) -> Value {
    json!({})
}

// ---- hosts (schemas/hosts.py) ----

/// `PUT /os-hosts/{host}`; Nova's `anyOf` (one of the two at least) is
/// checked by the handler.
fn host_update(_: ApiVersion) -> Value {
    let switch = json!({"type": "string",
        "enum": ["enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"]});
    object(
        json!({"status": switch.clone(), "maintenance_mode": switch}),
        &[],
    )
}

// ---- flavors (schemas/flavor_manage.py, flavors_extraspecs.py, flavor_access.py) ----

fn flavor_create(v: ApiVersion) -> Value {
    let mut f = json!({
        "name": name(),
        // Nova's '^(?! )[a-zA-Z0-9. _-]+(?<! )$' without look-around.
        "id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255,
               "pattern": "^[a-zA-Z0-9._-]([a-zA-Z0-9. _-]*[a-zA-Z0-9._-])?$"},
        "ram": integer(1),
        "vcpus": integer(1),
        "disk": integer(0),
        "OS-FLV-EXT-DATA:ephemeral": integer(0),
        "swap": integer(0),
        "rxtx_factor": {"type": ["number", "string"], "pattern": "^[0-9]+(\\.[0-9]+)?$",
                        "minimum": 0, "exclusiveMinimum": true, "maximum": 3.40282e38},
        "os-flavor-access:is_public": boolean(),
    });
    if v.at_least(2, 55) {
        f["description"] = nullable_string(0, 65535);
    }
    object(
        json!({"flavor": object(f, &["name", "ram", "vcpus", "disk"])}),
        &["flavor"],
    )
}

fn flavor_update(_: ApiVersion) -> Value {
    object(
        json!({"flavor": object(json!({"description": nullable_string(0, 65535)}), &["description"])}),
        &["flavor"],
    )
}

fn extra_spec_values() -> Value {
    json!({"type": "object",
           "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$":
               {"type": ["string", "number", "boolean"], "maxLength": 255}},
           "additionalProperties": false})
}

fn extra_specs_create(_: ApiVersion) -> Value {
    // `required` is left to the handler, which names an unknown key
    // before a missing one.
    object(json!({"extra_specs": extra_spec_values()}), &[])
}

fn extra_spec_update(_: ApiVersion) -> Value {
    let mut s = extra_spec_values();
    s["minProperties"] = json!(1);
    s
}

fn flavor_action(_: ApiVersion) -> Value {
    let tenant = object(json!({"tenant": string(1, 255)}), &["tenant"]);
    json!({"properties": {"addTenantAccess": tenant.clone(), "removeTenantAccess": tenant}})
}

// ---- server groups (schemas/server_groups.py) ----

fn server_group_create(v: ApiVersion) -> Value {
    let policies: &[&str] = if v.at_least(2, 15) {
        &[
            "anti-affinity",
            "affinity",
            "soft-anti-affinity",
            "soft-affinity",
        ]
    } else {
        &["anti-affinity", "affinity"]
    };
    let group = if v.at_least(2, 64) {
        object(
            json!({"name": name(), "policy": {"type": "string", "enum": policies},
                   "rules": object(json!({"max_server_per_host": integer(1)}), &[])}),
            &["name", "policy"],
        )
    } else {
        object(
            json!({"name": name(),
                   "policies": {"type": "array", "minItems": 1, "maxItems": 1,
                                "items": {"type": "string", "enum": policies}}}),
            &["name", "policies"],
        )
    };
    object(json!({"server_group": group}), &["server_group"])
}

// ---- aggregates (schemas/aggregates.py) ----

fn aggregate_create(_: ApiVersion) -> Value {
    object(
        json!({"aggregate": object(json!({"name": name(), "availability_zone": host()}), &["name"])}),
        &["aggregate"],
    )
}

fn aggregate_update(_: ApiVersion) -> Value {
    object(
        json!({"aggregate": object(json!({"name": name(), "availability_zone": host()}), &[])}),
        &["aggregate"],
    )
}

fn aggregate_action(_: ApiVersion) -> Value {
    let host = object(json!({"host": name()}), &["host"]);
    let meta = json!({"type": "object",
        "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": nullable_string(0, 255)},
        "additionalProperties": false});
    json!({"properties": {
        "add_host": host.clone(),
        "remove_host": host,
        "set_metadata": object(json!({"metadata": meta}), &["metadata"]),
    }})
}

// ---- server external events (schemas/server_external_events.py) ----

/// `POST /os-server-external-events`: the event names grow with the
/// version (2.51 `volume-extended`, 2.76 `power-update`, 2.82
/// `accelerator-request-bound`, 2.93 `volume-reimaged`).
fn external_events(v: ApiVersion) -> Value {
    let mut names = vec![
        "network-changed",
        "network-vif-plugged",
        "network-vif-unplugged",
        "network-vif-deleted",
    ];
    if v.at_least(2, 51) {
        names.push("volume-extended");
    }
    if v.at_least(2, 76) {
        names.push("power-update");
    }
    if v.at_least(2, 82) {
        names.push("accelerator-request-bound");
    }
    if v.at_least(2, 93) {
        names.push("volume-reimaged");
    }
    let event = object(
        json!({
            "name": {"type": "string", "enum": names},
            "server_uuid": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
            "tag": {"type": "string", "maxLength": 255},
        }),
        &["name", "server_uuid"],
    );
    object(
        json!({"events": {"type": "array", "minItems": 1, "items": event}}),
        &["events"],
    )
}

// ---- attachments (schemas/volumes.py, attach_interfaces.py, server_shares.py) ----

fn volume_attach(v: ApiVersion) -> Value {
    let mut a = json!({
        "volumeId": {"type": "string", "format": "uuid"},
        "device": {"type": ["string", "null"], "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"},
    });
    if v.at_least(2, 49) {
        a["tag"] = tag();
    }
    if v.at_least(2, 79) {
        a["delete_on_termination"] = boolean();
    }
    object(
        json!({"volumeAttachment": object(a, &["volumeId"])}),
        &["volumeAttachment"],
    )
}

fn volume_update(v: ApiVersion) -> Value {
    let mut a = json!({"volumeId": {"type": "string", "format": "uuid"}});
    if v.at_least(2, 85) {
        a["id"] = json!({"type": "string", "format": "uuid"});
        a["serverId"] = json!({"type": "string", "format": "uuid"});
        a["device"] = json!({"type": ["string", "null"]});
        a["tag"] = tag();
        a["delete_on_termination"] = boolean();
    }
    object(
        json!({"volumeAttachment": object(a, &["volumeId"])}),
        &["volumeAttachment"],
    )
}

fn interface_attach(v: ApiVersion) -> Value {
    let mut a = json!({
        "net_id": {"type": "string", "format": "uuid"},
        "port_id": {"type": "string", "format": "uuid"},
        "fixed_ips": {"type": "array", "minItems": 1, "maxItems": 1,
                      "items": object(json!({"ip_address": {"type": "string"}}), &["ip_address"])},
    });
    if v.at_least(2, 49) {
        a["tag"] = tag();
    }
    object(json!({"interfaceAttachment": object(a, &[])}), &[])
}

fn share_attach(_: ApiVersion) -> Value {
    object(
        json!({"share": object(json!({"share_id": {"type": "string", "format": "uuid"},
                                      "tag": string(1, 255)}), &["share_id"])}),
        &["share"],
    )
}

// ---- keypairs (schemas/keypairs.py) ----

fn keypair_create(v: ApiVersion) -> Value {
    let mut k = json!({"name": name(), "public_key": {"type": "string"}});
    if v.at_least(2, 2) {
        k["type"] = json!({"enum": ["ssh", "x509"]});
    }
    if v.at_least(2, 10) {
        // An empty user id names nobody (and would not survive the log).
        k["user_id"] = string(1, 255);
    }
    // The top-level `required` is left to the handler, which names an
    // unknown key before a missing one.
    object(json!({"keypair": object(k, &["name"])}), &[])
}

// ---- services (schemas/services.py) ----

fn service_host_binary(_: ApiVersion) -> Value {
    object(
        json!({"host": name(), "binary": name()}),
        &["host", "binary"],
    )
}

fn service_disable_reason(_: ApiVersion) -> Value {
    object(
        json!({"host": name(), "binary": name(), "disabled_reason": name()}),
        &["host", "binary"],
    )
}

fn service_force_down(_: ApiVersion) -> Value {
    object(
        json!({"host": name(), "binary": name(), "forced_down": boolean()}),
        &["host", "binary", "forced_down"],
    )
}

fn service_update(_: ApiVersion) -> Value {
    object(
        json!({"status": {"enum": ["enabled", "disabled"]}, "disabled_reason": name(),
               "forced_down": boolean()}),
        &[],
    )
}

/// Every route that takes a JSON body.
pub static ROUTES: &[RouteSchema] = &[
    route(
        "post",
        "/v2.1/servers",
        &[
            (2, 1),
            (2, 19),
            (2, 37),
            (2, 52),
            (2, 57),
            (2, 63),
            (2, 67),
            (2, 74),
            (2, 90),
            (2, 94),
        ],
        server_create,
    ),
    route(
        "put",
        "/v2.1/servers/{id}",
        &[(2, 1), (2, 19), (2, 90), (2, 94)],
        server_update,
    ),
    route(
        "post",
        "/v2.1/servers/{id}/os-volume_attachments",
        &[(2, 1), (2, 49), (2, 79)],
        volume_attach,
    ),
    route(
        "put",
        "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
        &[(2, 1), (2, 85)],
        volume_update,
    ),
    route(
        "post",
        "/v2.1/servers/{id}/os-interface",
        &[(2, 1), (2, 49)],
        interface_attach,
    ),
    route(
        "post",
        "/v2.1/servers/{id}/shares",
        &[(2, 97)],
        share_attach,
    ),
    route("post", "/v2.1/servers/{id}/metadata", ALL, metadata_body),
    route("put", "/v2.1/servers/{id}/metadata", ALL, metadata_body),
    route("put", "/v2.1/servers/{id}/metadata/{key}", ALL, meta_item),
    route("put", "/v2.1/servers/{id}/tags", &[(2, 26)], tags_body),
    route(
        "post",
        "/v2.1/servers/{id}/action",
        &[
            (2, 1),
            (2, 6),
            (2, 14),
            (2, 19),
            (2, 25),
            (2, 29),
            (2, 30),
            (2, 54),
            (2, 56),
            (2, 57),
            (2, 63),
            (2, 68),
            (2, 90),
            (2, 94),
        ],
        server_action,
    ),
    route(
        "post",
        "/v2.1/servers/{id}/remote-consoles",
        &[(2, 6), (2, 8)],
        remote_console,
    ),
    route(
        "put",
        "/v2.1/os-quota-sets/{project}",
        &[(2, 1), (2, 36), (2, 57)],
        quota_update,
    ),
    route(
        "put",
        "/v2.1/os-quota-class-sets/{id}",
        &[(2, 1), (2, 50), (2, 57)],
        quota_class_update,
    ),
    RouteSchema {
        until: ApiVersion::new(2, 42),
        ..route("put", "/v2.1/os-hosts/{host}", ALL, host_update)
    },
    route(
        "post",
        "/v2.1/os-server-external-events",
        &[(2, 1), (2, 51), (2, 76), (2, 82), (2, 93)],
        external_events,
    ),
    RouteSchema {
        until: ApiVersion::new(2, 38),
        ..route("post", "/v2.1/images/{id}/metadata", ALL, metadata_body)
    },
    RouteSchema {
        until: ApiVersion::new(2, 38),
        ..route("put", "/v2.1/images/{id}/metadata", ALL, metadata_body)
    },
    RouteSchema {
        until: ApiVersion::new(2, 38),
        ..route("put", "/v2.1/images/{id}/metadata/{key}", ALL, meta_item)
    },
    route("post", "/v2.1/os-networks", ALL, removed_network_write),
    route("post", "/v2.1/os-networks/add", ALL, removed_network_write),
    route(
        "post",
        "/v2.1/os-networks/{id}/action",
        ALL,
        removed_network_write,
    ),
    route("post", "/v2.1/flavors", &[(2, 1), (2, 55)], flavor_create),
    route("put", "/v2.1/flavors/{id}", &[(2, 55)], flavor_update),
    route(
        "post",
        "/v2.1/flavors/{id}/os-extra_specs",
        ALL,
        extra_specs_create,
    ),
    route(
        "put",
        "/v2.1/flavors/{id}/os-extra_specs/{key}",
        ALL,
        extra_spec_update,
    ),
    route("post", "/v2.1/flavors/{id}/action", ALL, flavor_action),
    route(
        "post",
        "/v2.1/os-server-groups",
        &[(2, 1), (2, 15), (2, 64)],
        server_group_create,
    ),
    route("post", "/v2.1/os-aggregates", ALL, aggregate_create),
    route("put", "/v2.1/os-aggregates/{id}", ALL, aggregate_update),
    route(
        "post",
        "/v2.1/os-aggregates/{id}/action",
        ALL,
        aggregate_action,
    ),
    route(
        "post",
        "/v2.1/os-keypairs",
        &[(2, 1), (2, 2), (2, 10)],
        keypair_create,
    ),
    RouteSchema {
        until: ApiVersion::new(2, 52),
        ..route("put", "/v2.1/os-services/disable", ALL, service_host_binary)
    },
    RouteSchema {
        until: ApiVersion::new(2, 52),
        ..route("put", "/v2.1/os-services/enable", ALL, service_host_binary)
    },
    RouteSchema {
        until: ApiVersion::new(2, 52),
        ..route(
            "put",
            "/v2.1/os-services/disable-log-reason",
            ALL,
            service_disable_reason,
        )
    },
    RouteSchema {
        until: ApiVersion::new(2, 52),
        ..route(
            "put",
            "/v2.1/os-services/force-down",
            &[(2, 11)],
            service_force_down,
        )
    },
    route("put", "/v2.1/os-services/{id}", &[(2, 53)], service_update),
];

type Key = (&'static str, &'static str);
/// `(first, last, schema)` of each range of one route.
type Ranges = Vec<(ApiVersion, ApiVersion, Value)>;

/// Every route's ranges, built once.
static BUILT: LazyLock<HashMap<Key, Ranges>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|r| ((r.method, r.path), r.ranges()))
        .collect()
});

/// The body schema of `method path` at `version`, if the route takes one
/// there.
pub fn schema_for(method: &str, path: &str, version: ApiVersion) -> Option<&'static Value> {
    let method = method.to_ascii_lowercase();
    let ranges = BUILT
        .iter()
        .find(|((m, p), _)| *m == method && *p == path)?
        .1;
    ranges
        .iter()
        .find(|(first, last, _)| *first <= version && version <= *last)
        .map(|(_, _, s)| s)
}

/// Validates a request body against its route's schema (nothing to check
/// when the route has none at this version).
pub fn check(method: &str, path: &str, version: ApiVersion, body: &Value) -> Result<(), ApiError> {
    match schema_for(method, path, version) {
        Some(schema) => super::schema::validate(schema, body).map_err(|e| e.into_api_error()),
        None => Ok(()),
    }
}

/// The versions a schema may be asked about (for tests and the fuzzer).
pub fn versions() -> impl Iterator<Item = ApiVersion> {
    (MIN_VERSION.minor..=MAX_VERSION.minor).map(|m| ApiVersion::new(2, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keywords_only() {
        for r in ROUTES {
            for (first, last, schema) in r.ranges() {
                assert!(first <= last, "{} {}: empty range", r.method, r.path);
                let unknown = super::super::schema::unknown_keywords(&schema);
                assert!(
                    unknown.is_empty(),
                    "{} {} at {first}: {unknown:?}",
                    r.method,
                    r.path
                );
            }
        }
    }

    #[test]
    fn ranges_follow_the_microversions() {
        let create = |v| schema_for("post", "/v2.1/servers", v).unwrap();
        assert!(
            create(ApiVersion::new(2, 18))["properties"]["server"]["properties"]
                .get("description")
                .is_none()
        );
        assert!(
            create(ApiVersion::new(2, 19))["properties"]["server"]["properties"]
                .get("description")
                .is_some()
        );
        assert_eq!(
            create(ApiVersion::new(2, 37))["properties"]["server"]["required"],
            json!(["name", "flavorRef", "networks"])
        );
        assert!(schema_for("put", "/v2.1/servers/{id}/tags", ApiVersion::new(2, 25)).is_none());
        assert!(schema_for("put", "/v2.1/os-services/enable", ApiVersion::new(2, 53)).is_none());
        assert!(schema_for("put", "/v2.1/os-services/{id}", ApiVersion::new(2, 53)).is_some());
    }

    #[test]
    fn out_of_range_numbers_are_400() {
        let v = ApiVersion::new(2, 1);
        let flavor = |ram: Value| {
            check(
                "post",
                "/v2.1/flavors",
                v,
                &json!({"flavor": {"name": "f", "ram": ram, "vcpus": 1, "disk": 0}}),
            )
        };
        assert!(flavor(json!(MAX_INT)).is_ok());
        let e = flavor(json!(MAX_INT + 1)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .ends_with("2147483648 is greater than the maximum of 2147483647")
        );
        assert!(flavor(json!(u64::MAX)).is_err());
        let q = |n: Value| {
            check(
                "put",
                "/v2.1/os-quota-sets/{project}",
                v,
                &json!({"quota_set": {"instances": n}}),
            )
        };
        assert!(q(json!(-1)).is_ok());
        assert!(q(json!(-2)).is_err());
        assert!(q(json!("2147483648")).is_err());
        let count = check(
            "post",
            "/v2.1/servers",
            v,
            &json!({"server": {"name": "s", "flavorRef": "1", "max_count": 1u64 << 40}}),
        );
        assert!(count.unwrap_err().message.contains("max_count"));
    }
}
