//! The query parameters of every Compute list route, as one table per route
//! ([`LISTS`]). The route's handler passes its query through
//! [`ListQuery::check`] before its own parser sees it, and the OpenAPI
//! document describes the same table ([`ListQuery::openapi`]), so what is
//! documented and what is accepted cannot drift apart: a parser only ever
//! sees names the table lets through at the request's microversion.
//!
//! The rules are Nova's `api/openstack/compute/schemas/*` query schemas:
//! a known parameter's value is checked as its schema checks it (400 in
//! Nova's words); an unknown parameter is dropped while the route's schema
//! has `additionalProperties: True` and is a 400 from the microversion
//! where Nova turns it to `False` (`strict_from`); an administrator-only
//! filter asked for by anyone else is dropped, as Nova's
//! `remove_invalid_options` does. The literal `None` that stock clients
//! send for an unset filter is never checked (the parsers treat it as
//! absent).

use serde_json::{Value, json};

use crate::domain::compute::parse_time;
use crate::domain::parse_bool;
pub use crate::domain::{integer, non_negative};
use crate::error::ApiError;
use crate::microversion::{ApiVersion, MIN_VERSION};

/// How a parameter's value is checked (and documented).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Any string (Nova's `common_query_param`).
    Text,
    /// A regular expression matched against the field (Nova's
    /// `common_query_regex_param`); one that does not compile matches
    /// literally, so nothing is refused.
    Pattern,
    /// Nova's `non_negative_integer`: digits only; a huge one is the
    /// largest page (Nova caps it at `max_limit`).
    NonNegative,
    /// An integer the handler parses itself, refused with `message`
    /// (`{v}` is the value) when it is not one.
    Integer { message: &'static str },
    /// Nova's `parameter_types.boolean`.
    Boolean,
    /// oslo's `bool_from_string(strict=True)`, where a bare name means yes
    /// (`?all_tenants`); refused with `message`.
    Flag { message: &'static str },
    /// One of these values.
    Enum(&'static [&'static str]),
    /// An ISO 8601 date and time.
    DateTime,
}

/// One query parameter of a list route.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// The first microversion that reads it.
    pub since: ApiVersion,
    /// The last one, if it was removed.
    pub until: Option<ApiVersion>,
    /// Only an administrator's value is used; anyone else's is dropped
    /// (until `public_from`, if set).
    pub admin_only: bool,
    /// The microversion from which everyone's value is used (2.83's list
    /// filters, 2.90's `hostname`).
    pub public_from: Option<ApiVersion>,
    pub about: &'static str,
}

/// The query table of one list route.
#[derive(Debug)]
pub struct ListQuery {
    /// The route (axum's syntax), as [`crate::openapi::OPERATIONS`] has it.
    pub path: &'static str,
    pub params: &'static [Param],
    /// From this microversion an unknown parameter is a 400; before it, it
    /// is ignored.
    pub strict_from: ApiVersion,
}

const fn p(name: &'static str, kind: Kind, since: (u32, u32), about: &'static str) -> Param {
    Param {
        name,
        kind,
        since: ApiVersion::new(since.0, since.1),
        until: None,
        admin_only: false,
        public_from: None,
        about,
    }
}

const fn admin(name: &'static str, kind: Kind, since: (u32, u32), about: &'static str) -> Param {
    Param {
        admin_only: true,
        ..p(name, kind, since, about)
    }
}

/// An administrator's filter that everyone may use from `public`.
const fn admin_until(
    name: &'static str,
    kind: Kind,
    public: (u32, u32),
    about: &'static str,
) -> Param {
    Param {
        public_from: Some(ApiVersion::new(public.0, public.1)),
        ..admin(name, kind, V21, about)
    }
}

const V21: (u32, u32) = (2, 1);
const LIMIT: &str = "Page size, capped at `[api] max_limit`";
const MARKER: &str = "Start after this item (the last one of the previous page)";

const FLAVOR_SORT_KEYS: &[&str] = &[
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
];

const SORT_DIRS: &[&str] = &["asc", "desc"];

/// Nova's `parameter_types.boolean` (as strings: a query has no JSON).
const NOVA_BOOLEANS: &[&str] = &[
    "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "False", "FALSE", "false",
    "0", "OFF", "Off", "off", "NO", "No", "no",
];

const ALL_TENANTS: &str = "Invalid input received: Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'";

const SERVERS_PARAMS: &[Param] = &[
    p("limit", Kind::NonNegative, V21, LIMIT),
    p("marker", Kind::Text, V21, MARKER),
    p(
        "all_tenants",
        Kind::Flag {
            message: ALL_TENANTS,
        },
        V21,
        "Every project's servers (policy `os_compute_api:servers:index:get_all_tenants`, admin by default); a bare `all_tenants` means yes",
    ),
    p(
        "name",
        Kind::Pattern,
        V21,
        "Regular expression searched in the name",
    ),
    p(
        "status",
        Kind::Text,
        V21,
        "Server status (repeatable); from 2.38 an unknown status is a 400; DELETED is for administrators",
    ),
    p("image", Kind::Text, V21, "Image id or href"),
    p("flavor", Kind::Text, V21, "Flavor id or href"),
    p(
        "reservation_id",
        Kind::Text,
        V21,
        "Reservation id of a multiple create",
    ),
    p("ip", Kind::Pattern, V21, "IPv4 address pattern"),
    admin_until("ip6", Kind::Pattern, (2, 5), "IPv6 address pattern"),
    p(
        "changes-since",
        Kind::DateTime,
        V21,
        "Servers changed at or after this time, deleted ones included",
    ),
    p(
        "changes-before",
        Kind::DateTime,
        (2, 66),
        "Servers changed at or before this time",
    ),
    p(
        "tags",
        Kind::Text,
        (2, 26),
        "Comma-separated tags, all present",
    ),
    p(
        "tags-any",
        Kind::Text,
        (2, 26),
        "Comma-separated tags, any present",
    ),
    p(
        "not-tags",
        Kind::Text,
        (2, 26),
        "Comma-separated tags, not all present",
    ),
    p(
        "not-tags-any",
        Kind::Text,
        (2, 26),
        "Comma-separated tags, none present",
    ),
    p(
        "sort_key",
        Kind::Enum(crate::domain::server_sort::SORT_KEYS),
        V21,
        "Order by this column (repeatable; host and node for administrators; below 2.75 Nova's ignored keys are dropped, from 2.75 they are a 400; `locked` is a key from 2.73); created_at and id are appended",
    ),
    p(
        "locked",
        Kind::Text,
        (2, 73),
        "Locked (true) or unlocked (false) servers (oslo strict boolean)",
    ),
    admin_until(
        "availability_zone",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in the availability zone",
    ),
    admin_until(
        "config_drive",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in config_drive (always empty here)",
    ),
    admin_until(
        "key_name",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in the key name",
    ),
    admin_until(
        "created_at",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in the creation time (`YYYY-MM-DD hh:mm:ss`)",
    ),
    admin_until(
        "launched_at",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in the launch time (`YYYY-MM-DD hh:mm:ss`)",
    ),
    admin_until(
        "terminated_at",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in the deletion time (`YYYY-MM-DD hh:mm:ss`)",
    ),
    admin_until(
        "power_state",
        Kind::Pattern,
        (2, 83),
        "Power state code (0 NOSTATE, 1 RUNNING, 3 PAUSED, 4 SHUTDOWN, 6 CRASHED, 7 SUSPENDED)",
    ),
    admin_until("task_state", Kind::Text, (2, 83), "Task state"),
    admin_until("vm_state", Kind::Text, (2, 83), "VM state"),
    admin_until(
        "progress",
        Kind::Pattern,
        (2, 83),
        "Regular expression searched in the progress (always 0 here)",
    ),
    admin_until(
        "hostname",
        Kind::Pattern,
        (2, 90),
        "Regular expression searched in the guest hostname",
    ),
    admin("uuid", Kind::Text, V21, "Server id"),
    admin("image_ref", Kind::Text, V21, "Image id (alias of image)"),
    admin(
        "launch_index",
        Kind::Text,
        V21,
        "Index in a multiple create",
    ),
    admin(
        "node",
        Kind::Pattern,
        V21,
        "Hypervisor hostname (the host here)",
    ),
    admin(
        "display_name",
        Kind::Pattern,
        V21,
        "Regular expression searched in the name (alias of name)",
    ),
    admin(
        "description",
        Kind::Pattern,
        V21,
        "Regular expression searched in the description",
    ),
    admin(
        "display_description",
        Kind::Pattern,
        V21,
        "Alias of description",
    ),
    admin("locked_by", Kind::Pattern, V21, "owner or admin"),
    admin(
        "access_ip_v4",
        Kind::Pattern,
        V21,
        "Regular expression searched in accessIPv4",
    ),
    admin(
        "access_ip_v6",
        Kind::Pattern,
        V21,
        "Regular expression searched in accessIPv6",
    ),
    admin(
        "auto_disk_config",
        Kind::Pattern,
        V21,
        "Regular expression searched in the disk config (True or False)",
    ),
    admin(
        "kernel_id",
        Kind::Pattern,
        V21,
        "Kernel image (none here: matches only an empty pattern)",
    ),
    admin(
        "ramdisk_id",
        Kind::Pattern,
        V21,
        "Ramdisk image (none here: matches only an empty pattern)",
    ),
    admin(
        "root_device_name",
        Kind::Pattern,
        V21,
        "Root device (none here: matches only an empty pattern)",
    ),
    admin(
        "soft_deleted",
        Kind::Text,
        V21,
        "Accepted with deleted, as Nova does; no server is soft deleted unless reclaim is on",
    ),
    p(
        "sort_dir",
        Kind::Text,
        V21,
        "asc or desc, paired with sort_key by position (default desc)",
    ),
    admin("host", Kind::Text, V21, "Compute host"),
    admin(
        "tenant_id",
        Kind::Text,
        V21,
        "Project (with all_tenants; alias of project_id)",
    ),
    admin("project_id", Kind::Text, V21, "Project (with all_tenants)"),
    admin_until("user_id", Kind::Text, (2, 83), "User"),
    admin(
        "deleted",
        Kind::Text,
        V21,
        "true: only deleted servers (oslo boolean, anything else is false)",
    ),
];

const FLAVORS_PARAMS: &[Param] = &[
    p("limit", Kind::NonNegative, V21, LIMIT),
    p("marker", Kind::Text, V21, MARKER),
    admin(
        "is_public",
        Kind::Text,
        V21,
        "true, false or None (every flavor); others always see public flavors and those given to their project",
    ),
    p(
        "minRam",
        Kind::Integer {
            message: "Invalid minRam filter [{v}]",
        },
        V21,
        "At least this much RAM (MiB)",
    ),
    p(
        "minDisk",
        Kind::Integer {
            message: "Invalid minDisk filter [{v}]",
        },
        V21,
        "At least this much root disk (GiB)",
    ),
    p(
        "sort_key",
        Kind::Enum(FLAVOR_SORT_KEYS),
        V21,
        "Checked as Nova checks it; flavors are listed in id order",
    ),
    p(
        "sort_dir",
        Kind::Enum(SORT_DIRS),
        V21,
        "Checked as Nova checks it; flavors are listed in id order",
    ),
    p("name", Kind::Text, (2, 102), "Exact flavor name"),
];

const KEYPAIRS_PARAMS: &[Param] = &[
    p(
        "user_id",
        Kind::Text,
        (2, 10),
        "Another user's keypairs (administrators; others get 403)",
    ),
    p("limit", Kind::NonNegative, (2, 35), LIMIT),
    p(
        "marker",
        Kind::Text,
        (2, 35),
        "Start after the keypair of this name",
    ),
];

const SERVER_GROUPS_PARAMS: &[Param] = &[
    admin(
        "all_projects",
        Kind::Text,
        V21,
        "Every project's groups (oslo boolean)",
    ),
    p("limit", Kind::NonNegative, V21, LIMIT),
    p("offset", Kind::NonNegative, V21, "Skip this many groups"),
];

const HYPERVISORS_PARAMS: &[Param] = &[
    p("limit", Kind::NonNegative, (2, 33), LIMIT),
    p(
        "marker",
        Kind::Text,
        (2, 33),
        "Start after this hypervisor (its id; its uuid from 2.53)",
    ),
    p(
        "hypervisor_hostname_pattern",
        Kind::Text,
        (2, 53),
        "Hypervisors whose hostname contains this; no paging with it",
    ),
    p(
        "with_servers",
        Kind::Boolean,
        (2, 53),
        "Each hypervisor's servers in the answer",
    ),
];

const MIGRATIONS_PARAMS: &[Param] = &[
    p(
        "hidden",
        Kind::Text,
        V21,
        "Accepted and ignored, as Nova does",
    ),
    p("host", Kind::Text, V21, "Source or destination host"),
    p("instance_uuid", Kind::Text, V21, "Server"),
    p("source_compute", Kind::Text, V21, "Source host"),
    p("status", Kind::Text, V21, "Migration status"),
    p(
        "migration_type",
        Kind::Text,
        V21,
        "migration, resize, live-migration or evacuation",
    ),
    p("limit", Kind::NonNegative, (2, 59), LIMIT),
    p(
        "marker",
        Kind::Text,
        (2, 59),
        "Start after this migration's uuid",
    ),
    p(
        "changes-since",
        Kind::DateTime,
        (2, 59),
        "Changed at or after this time",
    ),
    p(
        "changes-before",
        Kind::DateTime,
        (2, 66),
        "Changed at or before this time",
    ),
    p("user_id", Kind::Text, (2, 80), "The server's user"),
    p("project_id", Kind::Text, (2, 80), "The server's project"),
];

const INSTANCE_ACTIONS_PARAMS: &[Param] = &[
    p("limit", Kind::NonNegative, (2, 58), LIMIT),
    p(
        "marker",
        Kind::Text,
        (2, 58),
        "Start after the action of this request id",
    ),
    p(
        "changes-since",
        Kind::DateTime,
        (2, 58),
        "Updated at or after this time",
    ),
    p(
        "changes-before",
        Kind::DateTime,
        (2, 66),
        "Updated at or before this time",
    ),
];

const TENANT_USAGE_PARAMS: &[Param] = &[
    p(
        "start",
        Kind::Text,
        V21,
        "Period start (`%Y-%m-%dT%H:%M:%S[.%f]`, UTC; default now)",
    ),
    p(
        "end",
        Kind::Text,
        V21,
        "Period end (same formats; default and at most now)",
    ),
    p(
        "detailed",
        Kind::Text,
        V21,
        "`1`: each project's `server_usages` too",
    ),
    p("limit", Kind::NonNegative, (2, 40), LIMIT),
    p(
        "marker",
        Kind::Text,
        (2, 40),
        "Start after this server (instance_id)",
    ),
];

const TENANT_USAGE_SHOW_PARAMS: &[Param] = &[
    p(
        "start",
        Kind::Text,
        V21,
        "Period start (`%Y-%m-%dT%H:%M:%S[.%f]`, UTC; default now)",
    ),
    p(
        "end",
        Kind::Text,
        V21,
        "Period end (same formats; default and at most now)",
    ),
    p("limit", Kind::NonNegative, (2, 40), LIMIT),
    p(
        "marker",
        Kind::Text,
        (2, 40),
        "Start after this server (instance_id)",
    ),
];

const SERVICES_PARAMS: &[Param] = &[
    p("host", Kind::Text, V21, "Host name"),
    p("binary", Kind::Text, V21, "Service binary (nova-compute)"),
];

const fn list(path: &'static str, params: &'static [Param], strict: (u32, u32)) -> ListQuery {
    ListQuery {
        path,
        params,
        strict_from: ApiVersion::new(strict.0, strict.1),
    }
}

pub const SERVERS: ListQuery = list("/v2.1/servers", SERVERS_PARAMS, (2, 75));
pub const SERVERS_DETAIL: ListQuery = list("/v2.1/servers/detail", SERVERS_PARAMS, (2, 75));
pub const FLAVORS: ListQuery = list("/v2.1/flavors", FLAVORS_PARAMS, (2, 75));
pub const FLAVORS_DETAIL: ListQuery = list("/v2.1/flavors/detail", FLAVORS_PARAMS, (2, 75));
pub const KEYPAIRS: ListQuery = list("/v2.1/os-keypairs", KEYPAIRS_PARAMS, (2, 75));
pub const SERVER_GROUPS: ListQuery = list("/v2.1/os-server-groups", SERVER_GROUPS_PARAMS, (2, 75));
pub const HYPERVISORS: ListQuery = list("/v2.1/os-hypervisors", HYPERVISORS_PARAMS, (2, 53));
pub const HYPERVISORS_DETAIL: ListQuery =
    list("/v2.1/os-hypervisors/detail", HYPERVISORS_PARAMS, (2, 53));
pub const MIGRATIONS: ListQuery = list("/v2.1/os-migrations", MIGRATIONS_PARAMS, (2, 59));
pub const INSTANCE_ACTIONS: ListQuery = list(
    "/v2.1/servers/{id}/os-instance-actions",
    INSTANCE_ACTIONS_PARAMS,
    (2, 58),
);
pub const SERVICES: ListQuery = list("/v2.1/os-services", SERVICES_PARAMS, (2, 75));
pub const TENANT_USAGE: ListQuery =
    list("/v2.1/os-simple-tenant-usage", TENANT_USAGE_PARAMS, (2, 75));
pub const TENANT_USAGE_SHOW: ListQuery = list(
    "/v2.1/os-simple-tenant-usage/{tenant_id}",
    TENANT_USAGE_SHOW_PARAMS,
    (2, 75),
);
// Lists that read no parameter: Nova ignores any until 2.102.
pub const AGGREGATES: ListQuery = list("/v2.1/os-aggregates", &[], (2, 102));
pub const AVAILABILITY_ZONES: ListQuery = list("/v2.1/os-availability-zone", &[], (2, 102));
pub const AVAILABILITY_ZONES_DETAIL: ListQuery =
    list("/v2.1/os-availability-zone/detail", &[], (2, 102));
pub const SERVER_MIGRATIONS: ListQuery = list("/v2.1/servers/{id}/migrations", &[], (2, 102));

/// Every list route's table.
pub const LISTS: &[&ListQuery] = &[
    &SERVERS,
    &SERVERS_DETAIL,
    &FLAVORS,
    &FLAVORS_DETAIL,
    &KEYPAIRS,
    &SERVER_GROUPS,
    &HYPERVISORS,
    &HYPERVISORS_DETAIL,
    &MIGRATIONS,
    &INSTANCE_ACTIONS,
    &SERVICES,
    &TENANT_USAGE,
    &TENANT_USAGE_SHOW,
    &AGGREGATES,
    &AVAILABILITY_ZONES,
    &AVAILABILITY_ZONES_DETAIL,
    &SERVER_MIGRATIONS,
];

fn query_error(name: &str, value: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for query parameters {name}. Value: {value}. {reason}"
    ))
}

impl Param {
    fn read_at(&self, version: ApiVersion) -> bool {
        version >= self.since && self.until.is_none_or(|u| version <= u)
    }

    /// Checks `value` as Nova's schema does.
    fn check(&self, value: &str) -> Result<(), ApiError> {
        let n = self.name;
        match self.kind {
            Kind::Text | Kind::Pattern => Ok(()),
            Kind::NonNegative => match non_negative(value) {
                Some(_) => Ok(()),
                None if value.is_empty() => Err(query_error(n, value, "'' is too short")),
                None => Err(query_error(
                    n,
                    value,
                    &format!("'{value}' does not match '^[0-9]*$'"),
                )),
            },
            Kind::Integer { message } => integer(value)
                .map(|_| ())
                .ok_or_else(|| ApiError::bad_request(message.replace("{v}", value))),
            Kind::Boolean => {
                if NOVA_BOOLEANS.contains(&value) {
                    Ok(())
                } else {
                    Err(query_error(
                        n,
                        value,
                        &format!("'{value}' is not a valid boolean"),
                    ))
                }
            }
            Kind::Flag { message } => {
                if value.is_empty() || parse_bool(value).is_some() {
                    Ok(())
                } else {
                    Err(ApiError::bad_request(message.replace("{v}", value)))
                }
            }
            Kind::Enum(values) => {
                if values.contains(&value) {
                    Ok(())
                } else {
                    let listed: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
                    Err(query_error(
                        n,
                        value,
                        &format!("'{value}' is not one of [{}]", listed.join(", ")),
                    ))
                }
            }
            Kind::DateTime => parse_time(value)
                .map(|_| ())
                .ok_or_else(|| query_error(n, value, &format!("'{value}' is not a 'date-time'"))),
        }
    }

    /// The parameter's JSON schema in the OpenAPI document.
    fn schema(&self) -> Value {
        match self.kind {
            Kind::Text => json!({"type": "string"}),
            Kind::Pattern => json!({"type": "string", "format": "regex"}),
            Kind::NonNegative => json!({"type": "integer", "minimum": 0}),
            Kind::Integer { .. } => json!({"type": "integer"}),
            Kind::Boolean => json!({"type": "string", "enum": NOVA_BOOLEANS}),
            Kind::Flag { .. } => json!({
                "type": "string",
                "enum": ["", "0", "1", "f", "false", "n", "no", "off", "on", "t", "true", "y", "yes"],
            }),
            Kind::Enum(values) => json!({"type": "string", "enum": values}),
            Kind::DateTime => json!({"type": "string", "format": "date-time"}),
        }
    }
}

impl ListQuery {
    /// The parameters of this route read at `version`.
    pub fn read_at(&self, version: ApiVersion) -> impl Iterator<Item = &'static Param> + '_ {
        self.params.iter().filter(move |p| p.read_at(version))
    }

    /// Checks `pairs` against the table at `version`: the pairs the route's
    /// parser may read (known, read at this version, and permitted to the
    /// caller), or Nova's 400.
    pub fn check(
        &self,
        pairs: Vec<(String, String)>,
        version: ApiVersion,
        is_admin: bool,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let mut kept = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Some(param) = self.read_at(version).find(|p| p.name == k) else {
                if version >= self.strict_from {
                    return Err(ApiError::bad_request(format!(
                        "Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
                continue;
            };
            if v != "None" {
                param.check(&v)?;
            }
            if param.admin_only && !is_admin && param.public_from.is_none_or(|from| version < from)
            {
                continue;
            }
            kept.push((k, v));
        }
        Ok(kept)
    }

    /// The route's query parameters as OpenAPI parameter objects, each
    /// with the microversions that read it.
    pub fn openapi(&self) -> Vec<Value> {
        self.params
            .iter()
            .map(|p| {
                let mut about = p.about.to_owned();
                match (p.admin_only, p.public_from) {
                    (true, None) => about.push_str(" (administrators only; dropped for others)"),
                    (true, Some(v)) => about.push_str(&format!(
                        " (administrators only before {v}; dropped for others)"
                    )),
                    _ => {}
                }
                let mut versions = json!({"min_version": p.since.max(MIN_VERSION).to_string()});
                if let Some(u) = p.until {
                    versions["max_version"] = json!(u.to_string());
                }
                json!({
                    "name": p.name,
                    "in": "query",
                    "required": false,
                    "description": about,
                    "schema": p.schema(),
                    "x-openstack-microversions": versions,
                    "x-admin-only": p.admin_only,
                })
            })
            .collect()
    }

    /// How an unknown parameter is treated, for the OpenAPI document.
    pub fn unknown_openapi(&self) -> Value {
        json!({
            "before": "ignored",
            "from_version": self.strict_from.to_string(),
            "from": "400 badRequest",
        })
    }
}

/// The table of the list route `path`, if it is one.
pub fn of(path: &str) -> Option<&'static ListQuery> {
    LISTS.iter().copied().find(|l| l.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_administrators_filter_opens_to_everyone_at_its_version() {
        let q = pairs(&[("vm_state", "active"), ("hostname", "web"), ("node", "h")]);
        let member = |minor| {
            SERVERS
                .check(q.clone(), ApiVersion::new(2, minor), false)
                .unwrap()
        };
        assert_eq!(member(82), pairs(&[]));
        assert_eq!(member(83), pairs(&[("vm_state", "active")]));
        assert_eq!(
            member(90),
            pairs(&[("vm_state", "active"), ("hostname", "web")])
        );
        // An administrator's are kept at every version.
        assert_eq!(
            SERVERS
                .check(q.clone(), ApiVersion::new(2, 1), true)
                .unwrap(),
            q
        );
    }

    #[test]
    fn unknown_parameters_are_ignored_until_the_route_turns_strict() {
        let before = ApiVersion::new(2, 58);
        let kept = MIGRATIONS
            .check(pairs(&[("fuzz", "1"), ("host", "h")]), before, true)
            .unwrap();
        assert_eq!(kept, pairs(&[("host", "h")]));
        let e = MIGRATIONS
            .check(pairs(&[("fuzz", "1")]), ApiVersion::new(2, 59), true)
            .unwrap_err();
        assert_eq!(
            e.message,
            "Additional properties are not allowed ('fuzz' was unexpected)"
        );
        // A parameter of a later microversion is unknown before it.
        let e = MIGRATIONS
            .check(
                pairs(&[("changes-before", "2020-01-01T00:00:00Z")]),
                ApiVersion::new(2, 60),
                true,
            )
            .unwrap_err();
        assert!(
            e.message.contains("'changes-before' was unexpected"),
            "{}",
            e.message
        );
        assert!(
            SERVERS
                .check(pairs(&[("tags", "a")]), ApiVersion::new(2, 25), false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn values_are_checked_in_novas_words() {
        let v = ApiVersion::new(2, 1);
        let msg =
            |l: &ListQuery, q: &[(&str, &str)]| l.check(pairs(q), v, true).unwrap_err().message;
        assert_eq!(
            msg(&SERVERS, &[("limit", "-1")]),
            "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"
        );
        assert_eq!(
            msg(&FLAVORS, &[("sort_dir", "sideways")]),
            "Invalid input for query parameters sort_dir. Value: sideways. 'sideways' is not one of ['asc', 'desc']"
        );
        assert_eq!(
            msg(&FLAVORS, &[("minRam", "x")]),
            "Invalid minRam filter [x]"
        );
        assert!(
            msg(&SERVERS, &[("changes-since", "yesterday")])
                .ends_with("'yesterday' is not a 'date-time'")
        );
        assert!(msg(&SERVERS, &[("all_tenants", "maybe")]).starts_with("Invalid input received"));
        // Huge numbers are the largest page, not an error.
        assert!(
            SERVERS
                .check(pairs(&[("limit", "99999999999999999999")]), v, true)
                .is_ok()
        );
        assert_eq!(non_negative("99999999999999999999"), Some(usize::MAX));
        assert_eq!(integer("-99999999999999999999"), Some(i64::MIN));
        // Stock clients' `None` is not checked.
        assert!(
            SERVERS
                .check(pairs(&[("changes-since", "None")]), v, true)
                .is_ok()
        );
    }

    #[test]
    fn administrator_filters_are_dropped_for_others() {
        let v = ApiVersion::new(2, 1);
        let q = pairs(&[("host", "h"), ("name", "n")]);
        assert_eq!(
            SERVERS.check(q.clone(), v, false).unwrap(),
            pairs(&[("name", "n")])
        );
        assert_eq!(SERVERS.check(q.clone(), v, true).unwrap(), q);
    }

    #[test]
    fn every_list_route_is_a_documented_get_and_named_once() {
        let mut seen = std::collections::HashSet::new();
        for l in LISTS {
            assert!(seen.insert(l.path), "{} twice", l.path);
            assert!(
                crate::openapi::OPERATIONS
                    .iter()
                    .any(|o| o.method == "get" && o.path == l.path),
                "{} is not a documented GET",
                l.path
            );
            let mut names = std::collections::HashSet::new();
            for p in l.params {
                assert!(names.insert(p.name), "{} {} twice", l.path, p.name);
            }
        }
    }
}
