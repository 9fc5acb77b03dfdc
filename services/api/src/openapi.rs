//! `GET /openapi.json`: an OpenAPI 3.0 description of the routes this
//! service serves, built from [`OPERATIONS`] (Compute), the image and
//! identity routers' own descriptions, the request body schemas the
//! API validates bodies with ([`requests::ROUTES`]), and the query tables
//! the list routes check their queries with ([`query::LISTS`]). Tests check that
//! every `/v2.1` route of [`crate::app::router`] is in the table, that
//! every operation that reads a JSON body has its schema, and that every
//! schema belongs to a documented operation, so the document cannot drift
//! from the router or the validators.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::microversion::{MAX_VERSION, MIN_VERSION};
use crate::validation::{query, requests};

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
const SERVICE: &str = "service role, admin";

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
        "2.26 tag filters; 2.38 unknown status 400; 2.73 locked; 2.75 unknown parameters 400; 2.83 more filters for members; 2.90 hostname",
    ),
    op(
        "post",
        "/v2.1/servers",
        "Create one or more servers",
        MEMBER,
        202,
        "2.19 description; 2.37 networks required; 2.42 device tags; 2.52 tags; 2.57 no personality; 2.63 trusted_image_certificates; 2.67 volume_type; 2.74 host, hypervisor_hostname (admin); 2.90 hostname; 2.94 FQDN hostname",
    ),
    op(
        "get",
        "/v2.1/servers/detail",
        "List servers with details",
        MEMBER,
        200,
        "2.47 embedded flavor; 2.63 trusted_image_certificates; 2.73 locked_reason; 2.90 hostname for all; 2.96 pinned_availability_zone; 2.98 image properties; 2.100 scheduler_hints",
    ),
    op(
        "get",
        "/v2.1/servers/{id}",
        "Show a server",
        MEMBER,
        200,
        "2.3 extended attributes; 2.9 locked; 2.16 host_status; 2.19 description; 2.26 tags; 2.47 embedded flavor; 2.63 trusted_image_certificates; 2.71 server_groups; 2.73 locked_reason; 2.90 hostname for all; 2.96 pinned_availability_zone; 2.98 image properties; 2.100 scheduler_hints",
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
        200,
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
        "Server action: reboot, os-stop, os-start, pause, unpause, suspend, resume, lock, unlock, resize, confirmResize, revertResize, migrate, rebuild, evacuate, os-migrateLive, shelve, shelveOffload, unshelve, rescue (200 with adminPass), unrescue, os-getVNCConsole (200 with the console's URL, below 2.6), createImage (202; 2.45: {image_id}, before: Location), os-getConsoleOutput (200 {output}; 504 when the host does not answer), restore and forceDelete (soft delete with reclaim_instance_interval > 0), os-resetState (admin), trigger_crash_dump (2.17); resetNetwork answers 410 (removed)",
        MEMBER,
        202,
        "2.56 migrate host; 2.73 locked_reason; 2.77 unshelve availability_zone; 2.87 stable device rescue; 2.91 unshelve host and null availability_zone; 2.17 trigger_crash_dump; 2.39 createImage no longer checks metadata quota; 2.45 createImage returns image_id; admin only: migrate, evacuate, os-migrateLive, shelveOffload, unshelve to a host, os-resetState",
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
        "/v2.1/os-simple-tenant-usage",
        "Usage of every project over a period",
        ADMIN,
        200,
        "2.40 paging (limit, marker, tenant_usages_links); 2.75 unknown parameters 400",
    ),
    op(
        "get",
        "/v2.1/os-simple-tenant-usage/{tenant_id}",
        "Usage of one project over a period",
        "project reader or member (own project), admin",
        200,
        "2.40 paging (limit, marker, tenant_usage_links); 2.75 unknown parameters 400",
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
    op(
        "get",
        "/v2.1/os-quota-class-sets/{id}",
        "Show a quota class's limits (defaults where it sets none)",
        ADMIN,
        200,
        "2.50 server group limits shown, network ones gone; 2.57 no injected files",
    ),
    op(
        "put",
        "/v2.1/os-quota-class-sets/{id}",
        "Set a quota class's limits (class `default`: what projects fall back to)",
        ADMIN,
        200,
        "2.50 network resources refused; 2.57 injected files refused",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/ips",
        "List a server's addresses by network",
        MEMBER,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/ips/{network}",
        "Show a server's addresses on one network",
        MEMBER,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/topology",
        "Show a server's NUMA topology (none is kept: no nodes)",
        MEMBER,
        200,
        "from 2.78",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-volume_attachments",
        "List a server's volume attachments (no volume service: none)",
        MEMBER,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/servers/{id}/os-volume_attachments",
        "Attach a volume (no volume service: 404 for the volume)",
        MEMBER,
        200,
        "2.49 tag; 2.79 delete_on_termination",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
        "Show a volume attachment (none: 404)",
        MEMBER,
        200,
        "",
    ),
    op(
        "put",
        "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
        "Swap a volume (admin), or from 2.85 update delete_on_termination (none: 404)",
        MEMBER,
        202,
        "2.85 update by the owner",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
        "Detach a volume (none: 404)",
        MEMBER,
        202,
        "",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-interface",
        "List a server's port interfaces (no network service: none)",
        MEMBER,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/servers/{id}/os-interface",
        "Attach a port or network (no network service: 404, or 400 without either)",
        MEMBER,
        200,
        "2.49 tag",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-interface/{port_id}",
        "Show a port interface (none: 404)",
        MEMBER,
        200,
        "",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/os-interface/{port_id}",
        "Detach a port interface (none: 404)",
        MEMBER,
        202,
        "",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/shares",
        "List a server's share attachments (no share service: none)",
        MEMBER,
        200,
        "from 2.97",
    ),
    op(
        "post",
        "/v2.1/servers/{id}/shares",
        "Attach a share (no share service: 404 for the share)",
        MEMBER,
        201,
        "from 2.97",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/shares/{share_id}",
        "Show a share attachment (none: 404)",
        MEMBER,
        200,
        "from 2.97",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/shares/{share_id}",
        "Detach a share (none: 404)",
        MEMBER,
        200,
        "from 2.97",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/diagnostics",
        "Show a server's diagnostics from its virt driver",
        ADMIN,
        200,
        "2.48 standard format",
    ),
    op(
        "post",
        "/v2.1/servers/{id}/remote-consoles",
        "Create a remote console: a VNC console's URL (noVNC) with a new token; other protocols and types answer Nova's 400",
        MEMBER,
        200,
        "2.6; 2.8 mks protocol",
    ),
    op(
        "get",
        "/v2.1/os-console-auth-tokens/{token}",
        "Show what a console token names (instance, host, port); unknown, expired or a deleted server's: 404",
        ADMIN,
        200,
        "2.31 every console type (before: RDP only, 401)",
    ),
    op(
        "get",
        "/v2.1/servers/{id}/os-server-password",
        "Show a server's encrypted password",
        MEMBER,
        200,
        "",
    ),
    op(
        "delete",
        "/v2.1/servers/{id}/os-server-password",
        "Clear a server's encrypted password",
        MEMBER,
        204,
        "",
    ),
    op(
        "get",
        "/v2.1/os-hosts",
        "List compute hosts (enabled services)",
        ADMIN,
        200,
        "up to 2.42",
    ),
    op(
        "get",
        "/v2.1/os-hosts/{host}",
        "Show a host's resources",
        ADMIN,
        200,
        "up to 2.42",
    ),
    op(
        "put",
        "/v2.1/os-hosts/{host}",
        "Enable or disable a host, or switch its maintenance mode",
        ADMIN,
        200,
        "up to 2.42",
    ),
    op(
        "get",
        "/v2.1/os-hosts/{host}/reboot",
        "Reboot a host (as the virt driver answers)",
        ADMIN,
        200,
        "up to 2.42",
    ),
    op(
        "get",
        "/v2.1/os-hosts/{host}/shutdown",
        "Shut a host down (as the virt driver answers)",
        ADMIN,
        200,
        "up to 2.42",
    ),
    op(
        "get",
        "/v2.1/os-hosts/{host}/startup",
        "Start a host up (as the virt driver answers)",
        ADMIN,
        200,
        "up to 2.42",
    ),
    op(
        "get",
        "/v2.1/images",
        "List images (id, name, links)",
        ANY,
        200,
        "up to 2.35",
    ),
    op(
        "get",
        "/v2.1/images/detail",
        "List images with details",
        ANY,
        200,
        "up to 2.35",
    ),
    op(
        "get",
        "/v2.1/images/{id}",
        "Show an image",
        ANY,
        200,
        "up to 2.35",
    ),
    op(
        "delete",
        "/v2.1/images/{id}",
        "Delete an image (the Image service's policy)",
        MEMBER,
        204,
        "up to 2.35",
    ),
    op(
        "get",
        "/v2.1/images/{id}/metadata",
        "List an image's metadata",
        ANY,
        200,
        "up to 2.38",
    ),
    op(
        "post",
        "/v2.1/images/{id}/metadata",
        "Add to an image's metadata",
        MEMBER,
        200,
        "up to 2.38",
    ),
    op(
        "put",
        "/v2.1/images/{id}/metadata",
        "Replace an image's metadata",
        MEMBER,
        200,
        "up to 2.38",
    ),
    op(
        "get",
        "/v2.1/images/{id}/metadata/{key}",
        "Show an image metadata item",
        ANY,
        200,
        "up to 2.38",
    ),
    op(
        "put",
        "/v2.1/images/{id}/metadata/{key}",
        "Set an image metadata item",
        MEMBER,
        200,
        "up to 2.38",
    ),
    op(
        "delete",
        "/v2.1/images/{id}/metadata/{key}",
        "Delete an image metadata item",
        MEMBER,
        204,
        "up to 2.38",
    ),
    op(
        "get",
        "/v2.1/extensions",
        "List the v2 extensions the API is compatible with",
        ANY,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/extensions/{alias}",
        "Show an extension",
        ANY,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-networks",
        "List networks (none: no network service)",
        ANY,
        200,
        "up to 2.35",
    ),
    op(
        "post",
        "/v2.1/os-networks",
        "Create a network (removed with nova-network: 410)",
        ANY,
        410,
        "",
    ),
    op(
        "post",
        "/v2.1/os-networks/add",
        "Associate a network (removed with nova-network: 410)",
        ANY,
        410,
        "",
    ),
    op(
        "get",
        "/v2.1/os-networks/add",
        "Show the network `add` (none exists)",
        ANY,
        404,
        "up to 2.35",
    ),
    op(
        "delete",
        "/v2.1/os-networks/add",
        "Delete the network `add` (removed with nova-network: 410)",
        ANY,
        410,
        "",
    ),
    op(
        "get",
        "/v2.1/os-networks/{id}",
        "Show a network (none exists: 404)",
        ANY,
        404,
        "up to 2.35",
    ),
    op(
        "delete",
        "/v2.1/os-networks/{id}",
        "Delete a network (removed with nova-network: 410)",
        ANY,
        410,
        "",
    ),
    op(
        "post",
        "/v2.1/os-networks/{id}/action",
        "Disassociate a network (removed with nova-network: 410)",
        ANY,
        410,
        "",
    ),
    op(
        "get",
        "/v2.1/os-instance_usage_audit_log",
        "Show the instance usage audit of the last completed period",
        ADMIN,
        200,
        "",
    ),
    op(
        "get",
        "/v2.1/os-instance_usage_audit_log/{before}",
        "Show the instance usage audit of the period completed before a time",
        ADMIN,
        200,
        "",
    ),
    op(
        "post",
        "/v2.1/os-server-external-events",
        "Send events about servers (each answered with its own code)",
        SERVICE,
        200,
        "2.51 volume-extended",
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

/// The microversion headers every `/v2.1` operation reads.
fn microversion_params() -> [Value; 2] {
    [
        json!({"$ref": "#/components/parameters/OpenStackApiVersion"}),
        json!({"$ref": "#/components/parameters/NovaApiVersion"}),
    ]
}

/// The request body of `method path`, from the schemas the API validates
/// bodies with ([`requests::ROUTES`]): the newest as `schema`, and every
/// microversion range with its own schema under `x-openstack-microversions`.
fn request_body(method: &str, path: &str) -> Option<Value> {
    let route = requests::ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)?;
    let ranges = route.ranges();
    let newest = ranges.last()?.2.clone();
    let by_version: Vec<Value> = ranges
        .into_iter()
        .map(|(first, last, schema)| {
            json!({"min_version": first.to_string(), "max_version": last.to_string(), "schema": schema})
        })
        .collect();
    Some(json!({
        "required": true,
        "content": {"application/json": {"schema": newest}},
        "x-openstack-microversions": by_version,
    }))
}

fn fault_responses(responses: &mut Value) {
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
        fault_responses(&mut responses);
        let mut parameters = params(o.path);
        parameters.extend(microversion_params());
        let list = (o.method == "get").then(|| query::of(o.path)).flatten();
        if let Some(list) = list {
            parameters.extend(list.openapi());
        }
        let mut operation = json!({
            "operationId": format!("{}:{}", o.method, o.path),
            "summary": o.summary,
            "description": description,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(list) = list {
            operation["x-openstack-unknown-query-parameters"] = list.unknown_openapi();
        }
        if o.policy == "none" {
            operation["security"] = json!([]);
        }
        if let Some(body) = request_body(o.method, o.path) {
            operation["requestBody"] = body;
        }
        entry[o.method] = operation;
    }
    let admin = novalog_identity::admin_routes::OPERATIONS
        .iter()
        .map(|(m, p, s, a, st)| {
            // Create bodies are keystone's `{"<kind>": {...}}`; updates are
            // described without one (their fields are the create's).
            let body = (*m == "post").then(|| identity_create_body(p));
            (*m, *p, *s, *a, *st, body)
        });
    for (method, path, summary, policy, status, body) in image_and_identity_operations()
        .into_iter()
        .chain(image_sharing_and_import_operations())
        .chain(admin)
    {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        let mut responses = json!({
            status.to_string(): {"description": "Success"},
            "400": {"description": "Invalid request"},
            "401": {"description": "Missing or invalid token"},
            "403": {"description": "Policy forbids it"},
            "404": {"description": "Not found"},
        });
        if path.starts_with("/image/v2/images") {
            responses["409"] = json!({"description": "Conflict"});
            responses["413"] = json!({"description": "Too large"});
        }
        let mut parameters = params(path);
        if method == "get" && path == "/image/v2/images" {
            parameters.extend(novalog_image::images::LIST_QUERY.iter().map(|p| {
                json!({
                    "name": p.name, "in": "query", "required": false,
                    "description": p.about, "schema": p.schema(),
                })
            }));
        }
        let mut operation = json!({
            "operationId": format!("{method}:{path}"),
            "summary": summary,
            "description": format!("Policy: {policy}."),
            "parameters": parameters,
            "responses": responses,
        });
        if policy == "none" {
            operation["security"] = json!([]);
        }
        if let Some(body) = body {
            operation["requestBody"] = body;
        }
        entry[method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Novalog Compute API",
            "version": format!("{MIN_VERSION} - {MAX_VERSION}"),
            "description": "Nova's Compute API v2.1 as Novalog serves it, with the Image v2 and Identity v3 subsets. Select a microversion with `OpenStack-API-Version: compute X.Y`; authenticate with `X-Auth-Token` (Identity v3 at /identity/v3). Compute request bodies are checked against the schemas given here (per microversion range under `x-openstack-microversions`) before the handler runs; an invalid body is a 400. Image and identity bodies are described from those services' own schemas and checked by their handlers.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
            "parameters": {
                "OpenStackApiVersion": {
                    "name": "OpenStack-API-Version", "in": "header", "required": false,
                    "description": format!("`compute X.Y` ({MIN_VERSION} to {MAX_VERSION}) or `compute latest`; absent: {MIN_VERSION}. Wins over the legacy header. A version out of range is 406, a malformed one 400."),
                    "schema": {"type": "string", "pattern": "^compute ([1-9][0-9]*\\.(0|[1-9][0-9]*)|latest)$"},
                },
                "NovaApiVersion": {
                    "name": "X-OpenStack-Nova-API-Version", "in": "header", "required": false,
                    "description": "Legacy: `X.Y` or `latest`.",
                    "schema": {"type": "string", "pattern": "^([1-9][0-9]*\\.(0|[1-9][0-9]*)|latest)$"},
                },
            },
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

type OtherOperation = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u16,
    Option<Value>,
);

/// The Image v2 and Identity v3 operations. Image bodies are described by
/// the image API's own schema (`GET /image/v2/schemas/image`, from
/// [`novalog_image::routes::image_schema`]) and validated by its
/// handlers in Glance's words; the token request by keystone's shape.
/// Image members, tags, deactivation, the import API and the member
/// schemas (Glance's defaults as their policy).
fn image_sharing_and_import_operations() -> Vec<OtherOperation> {
    const OWNER: &str = "role:admin or (role:member and project_id:%(owner)s)";
    const OWNER_OR_MEMBER: &str =
        "role:admin or (role:reader and (project_id:%(owner)s or project_id:%(member_id)s))";
    let json_body = |schema: Value| {
        Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}))
    };
    let octets = Some(
        json!({"required": true, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}),
    );
    let members = "/image/v2/images/{id}/members";
    let member = "/image/v2/images/{id}/members/{member}";
    vec![
        (
            "get",
            members,
            "List an image's members",
            OWNER_OR_MEMBER,
            200,
            None,
        ),
        (
            "post",
            members,
            "Share a shared image with a project (pending)",
            OWNER,
            200,
            json_body(json!({"type": "object", "required": ["member"],
                "properties": {"member": {"type": "string"}}})),
        ),
        (
            "get",
            member,
            "Show an image member",
            OWNER_OR_MEMBER,
            200,
            None,
        ),
        (
            "put",
            member,
            "Accept or reject a shared image (the member only)",
            "role:admin or (role:member and project_id:%(member_id)s)",
            200,
            json_body(json!({"type": "object", "required": ["status"],
                "properties": {"status": {"type": "string",
                    "enum": novalog_schemas::image::MEMBER_STATUSES}}})),
        ),
        ("delete", member, "Remove an image member", OWNER, 204, None),
        (
            "put",
            "/image/v2/images/{id}/tags/{tag}",
            "Add a tag",
            OWNER,
            204,
            None,
        ),
        (
            "delete",
            "/image/v2/images/{id}/tags/{tag}",
            "Remove a tag",
            OWNER,
            204,
            None,
        ),
        (
            "post",
            "/image/v2/images/{id}/actions/deactivate",
            "Deactivate an image",
            OWNER,
            204,
            None,
        ),
        (
            "post",
            "/image/v2/images/{id}/actions/reactivate",
            "Reactivate an image",
            OWNER,
            204,
            None,
        ),
        (
            "put",
            "/image/v2/images/{id}/stage",
            "Stage image data for import (queued to uploading)",
            OWNER,
            204,
            octets,
        ),
        (
            "post",
            "/image/v2/images/{id}/import",
            "Import staged data (glance-direct)",
            OWNER,
            202,
            json_body(
                json!({"type": "object", "required": ["method"], "properties": {
                "method": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "enum": novalog_image::routes::IMPORT_METHODS}}},
                "all_stores": {"type": "boolean"},
                "all_stores_must_succeed": {"type": "boolean"}}}),
            ),
        ),
        (
            "get",
            "/image/v2/info/import",
            "Import methods available",
            "any authenticated user",
            200,
            None,
        ),
        (
            "get",
            "/image/v2/info/stores",
            "Stores (404: a single store)",
            "any authenticated user",
            404,
            None,
        ),
        (
            "get",
            "/image/v2/schemas/member",
            "The member schema",
            "any authenticated user",
            200,
            None,
        ),
        (
            "get",
            "/image/v2/schemas/members",
            "The members schema",
            "any authenticated user",
            200,
            None,
        ),
    ]
}

fn image_and_identity_operations() -> Vec<OtherOperation> {
    let image = novalog_image::routes::image_schema();
    let writable: Map<String, Value> = image["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| p.get("readOnly").is_none())
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "status"
                    | "checksum"
                    | "os_hash_algo"
                    | "os_hash_value"
                    | "owner"
                    | "size"
                    | "virtual_size"
                    | "created_at"
                    | "updated_at"
                    | "self"
                    | "file"
                    | "schema"
                    | "locations"
            )
        })
        .map(|(k, p)| (k.clone(), p.clone()))
        .collect();
    let create = json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object",
        "properties": writable,
        "additionalProperties": image["additionalProperties"],
    }}}});
    let patch = json!({"required": true, "content": {novalog_image::routes::PATCH_MEDIA_TYPE: {"schema": {
        "type": "array",
        "items": {"type": "object", "required": ["op", "path"], "properties": {
            "op": {"enum": ["add", "replace", "remove"]},
            "path": {"type": "string", "description": "/<property>, /tags, /tags/-"},
            "value": {},
        }},
    }}}});
    let upload = json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
    let token = json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["auth"],
        "properties": {"auth": {"type": "object", "required": ["identity"], "properties": {
            "identity": {"type": "object", "required": ["methods"], "properties": {
                "methods": {"type": "array", "items": {"enum": ["password", "token"]}},
                "password": {"type": "object", "properties": {"user": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "password": {"type": "string"}, "domain": {"type": "object"},
                }}}},
                "token": {"type": "object", "properties": {"id": {"type": "string"}}},
            }},
            "scope": {"type": ["object", "string"], "description": "{project: {id | name, domain}} or \"unscoped\""},
        }}},
    }}}});
    const GLANCE_MEMBER: &str =
        "role:admin or (role:member and project_id:%(project_id)s) (Glance's default)";
    const GLANCE_READER: &str =
        "role:admin or (role:reader and project_id:%(project_id)s) or public";
    vec![
        (
            "get",
            "/image",
            "Image API versions (300)",
            "none",
            300,
            None,
        ),
        (
            "get",
            "/image/",
            "Image API versions (300)",
            "none",
            300,
            None,
        ),
        (
            "get",
            "/image/versions",
            "Image API versions",
            "none",
            200,
            None,
        ),
        (
            "get",
            "/image/v2/images",
            "List images",
            GLANCE_READER,
            200,
            None,
        ),
        (
            "post",
            "/image/v2/images",
            "Create an image (queued)",
            GLANCE_MEMBER,
            201,
            Some(create),
        ),
        (
            "get",
            "/image/v2/images/{id}",
            "Show an image",
            GLANCE_READER,
            200,
            None,
        ),
        (
            "patch",
            "/image/v2/images/{id}",
            "Update an image (JSON patch)",
            GLANCE_MEMBER,
            200,
            Some(patch),
        ),
        (
            "delete",
            "/image/v2/images/{id}",
            "Delete an image",
            GLANCE_MEMBER,
            204,
            None,
        ),
        (
            "get",
            "/image/v2/images/{id}/file",
            "Download an image's data",
            GLANCE_READER,
            200,
            None,
        ),
        (
            "put",
            "/image/v2/images/{id}/file",
            "Upload an image's data",
            GLANCE_MEMBER,
            204,
            Some(upload),
        ),
        (
            "get",
            "/image/v2/schemas/image",
            "The image schema",
            "any authenticated user",
            200,
            None,
        ),
        (
            "get",
            "/image/v2/schemas/images",
            "The images schema",
            "any authenticated user",
            200,
            None,
        ),
        ("get", "/identity", "Identity versions", "none", 300, None),
        ("get", "/identity/", "Identity versions", "none", 300, None),
        (
            "get",
            "/identity/v3",
            "Identity v3 version document",
            "none",
            200,
            None,
        ),
        (
            "get",
            "/identity/v3/",
            "Identity v3 version document",
            "none",
            200,
            None,
        ),
        (
            "post",
            "/identity/v3/auth/tokens",
            "Issue a token (password or token method)",
            "none",
            201,
            Some(token),
        ),
        (
            "get",
            "/identity/v3/auth/tokens",
            "Validate X-Subject-Token",
            "identity:validate_token: admin or the token's user",
            200,
            None,
        ),
        (
            "delete",
            "/identity/v3/auth/tokens",
            "Revoke X-Subject-Token",
            "identity:revoke_token: admin or the token's user",
            204,
            None,
        ),
        (
            "get",
            "/identity/v3/auth/projects",
            "Projects the caller may scope to",
            "any token",
            200,
            None,
        ),
        (
            "get",
            "/identity/v3/auth/domains",
            "Domains the caller may scope to",
            "any token",
            200,
            None,
        ),
        (
            "get",
            "/identity/v3/auth/system",
            "System scopes the caller may use (none: no system role assignments)",
            "any token",
            200,
            None,
        ),
        (
            "get",
            "/identity/v3/auth/catalog",
            "The service catalog",
            "a project-scoped token",
            200,
            None,
        ),
    ]
}

/// The body of an identity create: `{"<kind>": {"name": ..., ...}}`.
fn identity_create_body(path: &str) -> Value {
    if path.ends_with("/password") {
        return json!({"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["user"],
            "properties": {"user": {"type": "object", "required": ["original_password", "password"],
                "additionalProperties": false, "properties": {
                    "original_password": {"type": "string"}, "password": {"type": "string"}}}},
        }}}});
    }
    let kind = match path.rsplit('/').next().unwrap_or_default() {
        "domains" => "domain",
        "projects" => "project",
        "users" => "user",
        "groups" => "group",
        "roles" => "role",
        _ => "application_credential",
    };
    let mut props = json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "description": {"type": "string"},
    });
    match kind {
        "domain" => props["enabled"] = json!({"type": "boolean"}),
        "project" | "user" | "group" => {
            props["domain_id"] = json!({"type": "string"});
            if kind == "project" {
                props["enabled"] = json!({"type": "boolean"});
            }
            if kind == "user" {
                props["password"] = json!({"type": "string"});
                props["enabled"] = json!({"type": "boolean"});
            }
        }
        "application_credential" => {
            props["secret"] = json!({"type": "string"});
            props["unrestricted"] = json!({"type": "boolean"});
            props["roles"] = json!({"type": "array", "items": {"type": "object"}});
        }
        _ => {}
    }
    json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": [kind],
        "properties": {kind: {"type": "object", "required": ["name"], "properties": props}},
    }}}})
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

    /// The route strings starting with `prefix` in a router's source.
    fn routes_in(src: &str, prefix: &str) -> Vec<String> {
        src.split('"')
            .filter(|s| {
                s.starts_with(prefix)
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/{}_-.".contains(c))
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn image_and_identity_routes_are_documented() {
        let doc = document();
        let image = include_str!("../../image/src/routes.rs");
        let identity = include_str!("../../identity/src/routes.rs");
        for path in routes_in(image, "/image")
            .into_iter()
            .chain(routes_in(identity, "/identity"))
        {
            assert!(
                doc["paths"].get(&path).is_some(),
                "{path} is routed but missing from openapi::image_and_identity_operations"
            );
        }
    }

    /// Every Compute operation that reads a JSON body has its schema, and
    /// every schema is of a documented operation.
    #[test]
    fn every_body_has_its_schema() {
        const NO_BODY: &[(&str, &str)] = &[("put", "/v2.1/servers/{id}/tags/{tag}")];
        for o in OPERATIONS {
            if matches!(o.method, "post" | "put") && !NO_BODY.contains(&(o.method, o.path)) {
                assert!(
                    request_body(o.method, o.path).is_some(),
                    "{} {} has no schema in validation::requests::ROUTES",
                    o.method,
                    o.path
                );
            }
        }
        for r in requests::ROUTES {
            assert!(
                OPERATIONS
                    .iter()
                    .any(|o| o.method == r.method && o.path == r.path),
                "{} {} has a schema but is not documented",
                r.method,
                r.path
            );
        }
        let doc = document();
        let flavor = &doc["paths"]["/v2.1/flavors"]["post"]["requestBody"];
        let ram = &flavor["content"]["application/json"]["schema"]["properties"]["flavor"]["properties"]
            ["ram"];
        assert_eq!(ram["maximum"], 2_147_483_647);
        let ranges = flavor["x-openstack-microversions"].as_array().unwrap();
        assert_eq!(ranges[0]["min_version"], "2.1");
        assert_eq!(ranges[0]["max_version"], "2.54");
        assert_eq!(ranges[1]["min_version"], "2.55");
        let params = doc["paths"]["/v2.1/servers"]["get"]["parameters"].to_string();
        assert!(params.contains("OpenStackApiVersion"), "{params}");
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
