//! Server operations (the role of Nova's `compute.api.API`): look up what a
//! request needs in the projection, check it, turn it into intents and the
//! conductor's verdicts into outcomes. No HTTP here beyond [`ApiError`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use novalog_schemas::events::ServerCreateRequested;
use novalog_schemas::{Event, Flavor, Image, Instance, ServerAction, TaskState};
use regex::Regex;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Context;
use crate::domain::Domain;
use crate::domain::catalog;
use crate::domain::intents::Intent;
use crate::domain::parse_bool;
use crate::error::ApiError;
use crate::microversion::ApiVersion;
use crate::policy::{self, Rule};
use crate::projection::verdicts::Verdict;

/// What the caller asked for with `networks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Networks {
    /// No `networks` key.
    Unspecified,
    /// `"auto"`.
    Auto,
    /// `"none"`.
    None,
    /// Explicit networks or ports.
    List(Vec<NetworkRequest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    pub uuid: Option<String>,
    pub port: Option<String>,
    pub fixed_ip: Option<String>,
}

/// What a server's description is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Description {
    /// Before 2.19 Nova stores each server's name as its description.
    Name,
    /// From 2.19 on, what the body says (null when absent).
    Given(Option<String>),
}

/// A syntactically valid create request; the flavor and image are not
/// looked up yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCreate {
    pub name: String,
    pub description: Description,
    /// The flavor id (the last path segment when a link was given).
    pub flavor_id: String,
    /// `imageRef`, or the boot image of `block_device_mapping_v2`.
    pub image_id: Option<Uuid>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub admin_pass: Option<String>,
    /// `accessIPv4`, `accessIPv6`, `OS-DCF:diskConfig` (`MANUAL` by
    /// default, echoed in the response).
    pub access: novalog_schemas::AccessConfig,
    /// `security_groups` as given, echoed in the response.
    pub security_groups: Option<Value>,
    pub networks: Networks,
    pub min_count: u32,
    pub max_count: u32,
    pub return_reservation_id: bool,
    /// `os:scheduler_hints` (or `OS-SCH-HNT:scheduler_hints`), every value
    /// as a list of strings.
    pub scheduler_hints: BTreeMap<String, Vec<String>>,
    /// Server tags given at create (2.52).
    pub tags: Vec<String>,
    /// The hostname asked for (2.90); `None`: derived from the name.
    pub hostname: Option<String>,
    /// Certificate ids to validate the image with (2.63).
    pub trusted_image_certificates: Option<Vec<String>>,
    /// `host` and `hypervisor_hostname` (2.74, administrators).
    pub requested_host: Option<String>,
    pub requested_node: Option<String>,
}

/// One parsed action request.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    pub action: ServerAction,
    /// Nova's policy rule for it (`os_compute_api:servers:reboot`, ...).
    pub policy: &'static str,
}

/// The availability zone every host is in unless it says otherwise
/// (nova.conf `default_availability_zone`).
pub const DEFAULT_AVAILABILITY_ZONE: &str = "nova";

/// What a create made.
#[derive(Debug, Clone)]
pub struct Created {
    /// The accepted instances, in launch order (at least one).
    pub instance_ids: Vec<Uuid>,
    pub reservation_id: String,
    pub admin_pass: String,
}

/// `count` characters drawn uniformly from `alphabet`.
fn random_string(alphabet: &[u8], count: usize) -> String {
    let mut out = String::with_capacity(count);
    while out.len() < count {
        for b in Uuid::new_v4().as_bytes() {
            // Rejection sampling keeps the draw uniform.
            let limit = 256 - 256 % alphabet.len();
            if (*b as usize) < limit && out.len() < count {
                out.push(alphabet[*b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Nova's `utils.generate_uid('r')`: `r-` and 8 characters.
pub fn reservation_id() -> String {
    format!(
        "r-{}",
        random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", 8)
    )
}

/// Nova's `utils.generate_password()`: 12 characters without look-alikes.
pub fn admin_password() -> String {
    random_string(
        b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
        12,
    )
}

/// 2.74's `host` / `hypervisor_hostname`: administrators only (Nova's
/// `compute:servers:create:requested_destination`), not together with a
/// `zone:host` availability zone, and naming a known host (one node per
/// host here, named as the host). The host to build on, if one was asked.
fn requested_destination(
    app: &Domain,
    ctx: &Context,
    req: &ServerCreate,
) -> Result<Option<String>, ApiError> {
    let (host, node) = (&req.requested_host, &req.requested_node);
    if host.is_none() && node.is_none() {
        return Ok(None);
    }
    if !ctx.is_admin {
        return Err(ApiError::forbidden(
            "Policy doesn't allow compute:servers:create:requested_destination to be performed.",
        ));
    }
    if req
        .availability_zone
        .as_deref()
        .is_some_and(|az| az.contains(':'))
    {
        return Err(ApiError::bad_request(
            "One mechanism with host and/or hypervisor_hostname and another mechanism with zone:host:node are mutually exclusive.",
        ));
    }
    // Nova's `_validate_host_or_node`: the pair, else either, must exist.
    let missing = match (host, node) {
        (Some(h), Some(n)) if h != n || app.projection.host(h).is_none() => Some(h),
        (Some(h), None) if app.projection.host(h).is_none() => Some(h),
        (None, Some(n)) if app.projection.host(n).is_none() => Some(n),
        _ => None,
    };
    if let Some(h) = missing {
        return Err(ApiError::bad_request(format!(
            "Compute host {h} could not be found."
        )));
    }
    Ok(host.clone().or_else(|| node.clone()))
}

/// The server `id` names, if `ctx` may see it: deleted servers are gone,
/// other projects' servers exist for administrators only.
pub fn visible(app: &Domain, ctx: &Context, id: &str) -> Option<Arc<Instance>> {
    let id = Uuid::parse_str(id).ok()?;
    let inst = app.projection.instance(&id)?;
    (!inst.is_deleted() && (ctx.is_admin || inst.project_id == ctx.project_id)).then_some(inst)
}

/// Creates `req.max_count` servers: one intent each, appended together.
pub async fn create(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    req: ServerCreate,
) -> Result<Created, ApiError> {
    policy::authorize(ctx, Rule::ServersCreate, None)?;
    check_networks(&req.networks)?;
    let flavor = catalog::visible_flavor(app, ctx, &req.flavor_id).ok_or_else(|| {
        ApiError::bad_request(format!("Flavor {} could not be found.", req.flavor_id))
    })?;
    let image = req
        .image_id
        .and_then(|id| catalog::visible_image(app, ctx, &id))
        .ok_or_else(|| ApiError::bad_request("Can not find requested image"))?;
    check_image_fits(&flavor, &image)?;
    // The key is the caller's own (Nova looks it up by the request's user).
    if let Some(key) = &req.key_name
        && app.projection.keypair(&ctx.user_id, key).is_none()
    {
        return Err(ApiError::bad_request("Invalid key_name provided."));
    }
    if let Some(az) = &req.availability_zone
        && az != DEFAULT_AVAILABILITY_ZONE
        && !app.projection.availability_zones().contains(az)
    {
        return Err(ApiError::bad_request(
            "The requested availability zone is not available",
        ));
    }
    let requested_host = requested_destination(app, ctx, &req)?;
    if let Some(group) = req.scheduler_hints.get("group").and_then(|v| v.first()) {
        let found = Uuid::parse_str(group)
            .ok()
            .and_then(|id| app.projection.server_group(&id))
            .filter(|g| ctx.is_admin || g.group.project_id == ctx.project_id);
        if found.is_none() {
            return Err(ApiError::bad_request(format!(
                "Invalid server group {group}."
            )));
        }
    }

    let reservation_id = reservation_id();
    let admin_pass = req.admin_pass.clone().unwrap_or_else(admin_password);
    let ids: Vec<Uuid> = (0..req.max_count).map(|_| Uuid::new_v4()).collect();
    let intents = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            // Nova's multi_instance_display_name_template, '%(name)s-%(count)d'.
            let name = if req.max_count > 1 {
                format!("{}-{}", req.name, i + 1)
            } else {
                req.name.clone()
            };
            let guest_hostname = req.hostname.clone().unwrap_or_else(|| hostname(&name, id));
            Intent {
                aggregate_id: id.to_string(),
                event: Event::Intent(novalog_schemas::Intent::ServerCreateRequested(Box::new(
                    ServerCreateRequested {
                        instance_id: *id,
                        description: match &req.description {
                            Description::Name => Some(name.clone()),
                            Description::Given(d) => d.clone(),
                        },
                        name,
                        flavor: (*flavor).clone(),
                        image: (*image).clone(),
                        metadata: req.metadata.clone(),
                        availability_zone: req.availability_zone.clone(),
                        key_name: req.key_name.clone(),
                        user_data: req.user_data.clone(),
                        tags: req.tags.clone(),
                        reservation_id: reservation_id.clone(),
                        launch_index: i as u32,
                        scheduler_hints: req.scheduler_hints.clone(),
                        min_count: req.min_count,
                        max_count: req.max_count,
                        access: req.access,
                        hostname: guest_hostname,
                        trusted_image_certificates: req.trusted_image_certificates.clone(),
                        requested_host: requested_host.clone(),
                    },
                ))),
            }
        })
        .collect();
    let verdicts = app
        .intents
        .submit(ctx, request_id, &ctx.project_id, intents)
        .await?;
    let mut accepted = Vec::new();
    let mut first_rejection = None;
    for (id, verdict) in ids.iter().zip(verdicts) {
        match verdict {
            Verdict::Accepted(_) => accepted.push(*id),
            Verdict::Rejected(r) => {
                first_rejection.get_or_insert(r.into());
            }
        }
    }
    match first_rejection {
        Some(e) if accepted.is_empty() => Err(e),
        _ => Ok(Created {
            instance_ids: accepted,
            reservation_id,
            admin_pass,
        }),
    }
}

/// No networks exist in this cloud yet: "none", "auto" and an empty list
/// are fine, a named network or port cannot be found.
fn check_networks(networks: &Networks) -> Result<(), ApiError> {
    let Networks::List(list) = networks else {
        return Ok(());
    };
    let Some(n) = list.first() else {
        return Ok(());
    };
    if let Some(port) = &n.port {
        return Err(ApiError::bad_request(format!(
            "Port id {port} could not be found."
        )));
    }
    Err(match &n.uuid {
        Some(uuid) if Uuid::parse_str(uuid).is_err() => ApiError::bad_request(format!(
            "Bad networks format: network uuid is not in proper format ({uuid})"
        )),
        Some(uuid) => ApiError::bad_request(format!("Network {uuid} could not be found.")),
        None => ApiError::bad_request("Bad network format: missing uuid"),
    })
}

/// Bytes in a GiB. Sizes are multiplied in `u128`, where any `u64` count
/// of GiB fits, so a user's `min_disk` can neither overflow nor wrap, and
/// the message shows the exact product as Nova's (Python integers) does.
const GIB: u128 = 1 << 30;

/// Nova's `_validate_flavor_image_nostatus` checks on size and status
/// (create and rebuild).
pub(crate) fn check_image_fits(flavor: &Flavor, image: &Image) -> Result<(), ApiError> {
    if image.status != "active" {
        return Err(ApiError::bad_request(format!(
            "Image {} is not active.",
            image.id
        )));
    }
    if image.min_ram > flavor.ram_mb {
        return Err(ApiError::bad_request(
            "Flavor's memory is too small for requested image.",
        ));
    }
    if flavor.disk_gb > 0 {
        let flavor_bytes = u128::from(flavor.disk_gb) * GIB;
        if u128::from(image.size) > flavor_bytes {
            return Err(ApiError::bad_request(format!(
                "Flavor's disk is too small for requested image. Flavor disk is {flavor_bytes} bytes, image is {} bytes.",
                image.size
            )));
        }
        if image.min_disk > flavor.disk_gb {
            return Err(ApiError::bad_request(format!(
                "Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is {flavor_bytes} bytes, minimum size is {} bytes.",
                u128::from(image.min_disk) * GIB
            )));
        }
    }
    Ok(())
}

/// Deletes a server: 404 when `ctx` cannot see it, nothing to do when it
/// is already being deleted, else the conductor's verdict.
pub async fn delete(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    id: &str,
) -> Result<(), ApiError> {
    let inst =
        visible(app, ctx, id).ok_or_else(|| ApiError::not_found("Instance could not be found"))?;
    policy::authorize(ctx, Rule::ServersDelete, Some(&inst.project_id))?;
    if inst.task_state == Some(TaskState::Deleting) {
        return Ok(());
    }
    submit_delete(app, ctx, request_id, &inst, false).await
}

/// Submits the delete of `inst` (found and authorized by the caller):
/// soft where `reclaim_instance_interval` makes it so, unless `force`
/// (`forceDelete`).
pub async fn submit_delete(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    inst: &Instance,
    force: bool,
) -> Result<(), ApiError> {
    let intent = Intent {
        aggregate_id: inst.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ServerDeleteRequested {
            instance_id: inst.id,
            force,
        }),
    };
    // Keyed by the instance's project, whoever asks, so the intent is
    // ordered with everything else that happens to the instance.
    let verdicts = app
        .intents
        .submit(ctx, request_id, &inst.project_id, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Rejected(r)) => Err(r.into()),
        _ => Ok(()),
    }
}

/// Asks the conductor for a server action: 404 when `ctx` cannot see the
/// server, 403 by policy, else the conductor's verdict (Nova's 409s on
/// state and lock).
pub async fn act(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    id: &str,
    req: ActionRequest,
) -> Result<(), ApiError> {
    let inst = authorized(app, ctx, id, Rule::OwnerOrAdmin(req.policy))?;
    // Nova's lock: an owner locking a locked server changes nothing.
    if matches!(req.action, novalog_schemas::ServerAction::Lock { .. })
        && inst.is_locked()
        && inst.project_id == ctx.project_id
    {
        return Ok(());
    }
    submit_action(app, ctx, request_id, &inst, req.action)
        .await
        .map(drop)
}

/// Submits `action` on `inst` (found and authorized by the caller) and
/// returns the first record the conductor accepted it with, or its
/// refusal.
pub async fn submit_action(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    inst: &Instance,
    action: ServerAction,
) -> Result<Option<Event>, ApiError> {
    let intent = Intent {
        aggregate_id: inst.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ServerActionRequested {
            instance_id: inst.id,
            action,
        }),
    };
    // Keyed by the instance's project: ordered with all else it undergoes.
    let verdicts = app
        .intents
        .submit(ctx, request_id, &inst.project_id, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Rejected(r)) => Err(r.into()),
        Some(Verdict::Accepted(e)) => Ok(Some(*e)),
        None => Ok(None),
    }
}

/// The server `id` names if `ctx` may see it and `rule` allows `ctx` to
/// act on it: Nova's 404, then its 403.
pub fn authorized(
    app: &Domain,
    ctx: &Context,
    id: &str,
    rule: Rule,
) -> Result<Arc<Instance>, ApiError> {
    let inst = visible(app, ctx, id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    policy::authorize(ctx, rule, Some(&inst.project_id))?;
    Ok(inst)
}

/// Submits a change to `inst` (update, metadata, tags) and returns the
/// event the conductor accepted it with, or its refusal.
pub async fn change(
    app: &Domain,
    ctx: &Context,
    request_id: &str,
    inst: &Instance,
    event: Event,
) -> Result<Event, ApiError> {
    let intent = Intent {
        aggregate_id: inst.id.to_string(),
        event,
    };
    let verdicts = app
        .intents
        .submit(ctx, request_id, &inst.project_id, vec![intent])
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Accepted(e)) => Ok(*e),
        Some(Verdict::Rejected(r)) => Err(r.into()),
        None => Err(ApiError::unavailable("no verdict")),
    }
}

/// A page of a server list: at most `[api] max_limit` servers.
#[derive(Debug, Clone)]
pub struct Page {
    pub servers: Vec<Arc<Instance>>,
}

/// Filters of `GET /servers[/detail]` (literal `None` values already
/// dropped).
#[derive(Debug, Default)]
struct Filters {
    all_tenants: bool,
    name: Option<Regex>,
    statuses: BTreeSet<String>,
    image: Option<String>,
    flavor: Option<String>,
    reservation_id: Option<String>,
    host: Option<String>,
    project_id: Option<String>,
    user_id: Option<String>,
    ip: bool,
    changes_since: Option<i64>,
    /// From 2.66: updated at or before.
    changes_before: Option<i64>,
    deleted: Option<bool>,
    limit: Option<usize>,
    marker: Option<String>,
    /// From 2.26: servers with all of / any of / not all of / none of.
    tags: Vec<String>,
    tags_any: Vec<String>,
    not_tags: Vec<String>,
    not_tags_any: Vec<String>,
    /// From 2.73: locked (true) or unlocked (false) servers.
    locked: Option<bool>,
    /// The other columns Nova filters on (2.83 opened some to everyone).
    columns: Vec<(Column, Match)>,
}

/// A column of Nova's `instances` table that `GET /servers` filters on,
/// as text the way the database holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    AvailabilityZone,
    ConfigDrive,
    KeyName,
    CreatedAt,
    LaunchedAt,
    TerminatedAt,
    PowerState,
    TaskState,
    VmState,
    Progress,
    Hostname,
    Uuid,
    LaunchIndex,
    Node,
    Description,
    LockedBy,
    AccessIpV4,
    AccessIpV6,
    AutoDiskConfig,
    KernelId,
    RamdiskId,
    RootDeviceName,
}

/// How Nova's database layer matches a column: exactly (any of the values
/// given) for `vm_state`, `task_state` and `uuid`; a regular expression
/// search for the rest. A column without a value (NULL) matches nothing.
#[derive(Debug, Clone)]
enum Match {
    Exact(Vec<String>),
    Search(Regex),
}

impl Column {
    fn parse(k: &str) -> Option<Column> {
        Some(match k {
            "availability_zone" => Column::AvailabilityZone,
            "config_drive" => Column::ConfigDrive,
            "key_name" => Column::KeyName,
            "created_at" => Column::CreatedAt,
            "launched_at" => Column::LaunchedAt,
            "terminated_at" => Column::TerminatedAt,
            "power_state" => Column::PowerState,
            "task_state" => Column::TaskState,
            "vm_state" => Column::VmState,
            "progress" => Column::Progress,
            "hostname" => Column::Hostname,
            "uuid" => Column::Uuid,
            "launch_index" => Column::LaunchIndex,
            "node" => Column::Node,
            "description" | "display_description" => Column::Description,
            "locked_by" => Column::LockedBy,
            "access_ip_v4" => Column::AccessIpV4,
            "access_ip_v6" => Column::AccessIpV6,
            "auto_disk_config" => Column::AutoDiskConfig,
            "kernel_id" => Column::KernelId,
            "ramdisk_id" => Column::RamdiskId,
            "root_device_name" => Column::RootDeviceName,
            _ => return None,
        })
    }

    fn exact(self) -> bool {
        matches!(self, Column::VmState | Column::TaskState | Column::Uuid)
    }

    /// The instance's value; `zone` is the one the view shows.
    fn value(self, i: &Instance, zone: &dyn Fn(&Instance) -> String) -> Option<String> {
        let time = |ms: Option<i64>| {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        match self {
            Column::AvailabilityZone => Some(zone(i)),
            Column::ConfigDrive | Column::KernelId | Column::RamdiskId => Some(String::new()),
            Column::KeyName => i.key_name.clone(),
            Column::CreatedAt => time(Some(i.created_at_ms)),
            Column::LaunchedAt => time(i.launched_at_ms),
            Column::TerminatedAt => time(i.deleted_at_ms),
            Column::PowerState => Some(i.power_state.code().to_string()),
            Column::TaskState => i.task_state.map(|t| t.as_str().to_owned()),
            Column::VmState => Some(i.vm_state.as_str().to_owned()),
            Column::Progress => Some("0".into()),
            Column::Hostname => Some(guest_hostname(i)),
            Column::Uuid => Some(i.id.to_string()),
            Column::LaunchIndex => Some(i.launch_index.to_string()),
            Column::Node => i.host.clone(),
            Column::Description => i.description.clone(),
            Column::LockedBy => i.locked_by.clone(),
            Column::AccessIpV4 => i.access.access_ip_v4.map(|a| a.to_string()),
            Column::AccessIpV6 => i.access.access_ip_v6.map(|a| a.to_string()),
            Column::AutoDiskConfig => {
                Some(if i.access.auto_disk_config { "1" } else { "0" }.into())
            }
            Column::RootDeviceName => None,
        }
    }
}

impl Match {
    fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (_, None) => false,
            (Match::Exact(values), Some(v)) => values.iter().any(|x| x == v),
            (Match::Search(re), Some(v)) => re.is_match(v),
        }
    }
}

/// A regular expression as Nova's filters take it: one that does not
/// compile matches literally.
fn search(v: &str) -> Option<Regex> {
    Regex::new(v)
        .or_else(|_| Regex::new(&regex::escape(v)))
        .ok()
}

impl Filters {
    fn tags_match(&self, tags: &[String]) -> bool {
        let has = |t: &String| tags.contains(t);
        (self.tags.is_empty() || self.tags.iter().all(has))
            && (self.tags_any.is_empty() || self.tags_any.iter().any(has))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(has))
            && (self.not_tags_any.is_empty() || !self.not_tags_any.iter().any(has))
    }
}

/// Nova's `utils.sanitize_hostname` of the display name, the instance's
/// `hostname` (`OS-EXT-SRV-ATTR:hostname` from 2.3).
pub fn hostname(name: &str, id: &Uuid) -> String {
    let latin1: String = name
        .chars()
        .filter(|c| (*c as u32) < 256)
        .take(63)
        .collect();
    let dashed: String = latin1
        .chars()
        .map(|c| if matches!(c, ' ' | '_' | '.') { '-' } else { c })
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '.')
        .collect::<String>()
        .to_lowercase();
    let host = dashed.trim_matches(['.', '-']).to_owned();
    if host.is_empty() {
        format!("Server-{id}")
    } else {
        host
    }
}

/// The guest's hostname as Nova keeps it (`instance.hostname`): set at
/// create and changed only when asked for; derived from the name for
/// instances created before it was kept.
pub fn guest_hostname(inst: &Instance) -> String {
    if inst.hostname.is_empty() {
        hostname(&inst.name, &inst.id)
    } else {
        inst.hostname.clone()
    }
}

/// A time in the forms clients send (ISO 8601, with or without zone).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// Every server status Nova knows (`GET /servers?status=` from 2.38).
const KNOWN_STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "DELETED",
    "ERROR",
    "HARD_REBOOT",
    "MIGRATING",
    "PASSWORD",
    "PAUSED",
    "REBOOT",
    "REBUILD",
    "RESCUE",
    "RESIZE",
    "REVERT_RESIZE",
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SOFT_DELETED",
    "SUSPENDED",
    "UNKNOWN",
    "VERIFY_RESIZE",
];

fn parse_filters(
    ctx: &Context,
    params: &[(String, String)],
    version: ApiVersion,
) -> Result<Filters, ApiError> {
    let mut f = Filters::default();
    let split = |v: &str| -> Vec<String> {
        v.split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for (k, v) in params {
        match k.as_str() {
            "tags" if version.at_least(2, 26) => f.tags = split(v),
            "tags-any" if version.at_least(2, 26) => f.tags_any = split(v),
            "not-tags" if version.at_least(2, 26) => f.not_tags = split(v),
            "not-tags-any" if version.at_least(2, 26) => f.not_tags_any = split(v),
            "all_tenants" => {
                // A bare `all_tenants` means yes, as Nova's clients use it.
                f.all_tenants = v.is_empty()
                    || parse_bool(v).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid input received: Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
                        ))
                    })?;
            }
            "name" | "display_name" => {
                // Nova matches names with a regular expression search; a
                // pattern that does not compile matches literally.
                f.name = search(v);
            }
            "locked" if version.at_least(2, 73) => {
                // Nova's `common.is_locked`: oslo's strict boolean.
                f.locked = Some(parse_bool(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input received: Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
                    ))
                })?);
            }
            "image_ref" => f.image = Some(crate::domain::id_from_href(v)),
            "status" => {
                let status = v.to_ascii_uppercase();
                // From 2.38 an unknown status is an error, not an empty list.
                if version.at_least(2, 38) && !KNOWN_STATUSES.contains(&status.as_str()) {
                    return Err(ApiError::bad_request("Invalid status value"));
                }
                f.statuses.insert(status);
            }
            "image" => f.image = Some(crate::domain::id_from_href(v)),
            "flavor" => f.flavor = Some(crate::domain::id_from_href(v)),
            "reservation_id" => f.reservation_id = Some(v.clone()),
            "ip" | "ip6" => f.ip = true,
            "changes-since" => {
                f.changes_since = Some(parse_time(v).ok_or_else(|| {
                    ApiError::bad_request("Invalid filter field: changes-since.")
                })?);
            }
            "changes-before" if version.at_least(2, 66) => {
                f.changes_before = Some(parse_time(v).ok_or_else(|| {
                    ApiError::bad_request("Invalid filter field: changes-before.")
                })?);
            }
            "limit" => {
                let n = crate::domain::non_negative(v)
                    .ok_or_else(|| ApiError::bad_request("limit param must be an integer"))?;
                f.limit = Some(n);
            }
            "marker" => f.marker = Some(v.clone()),
            // Administrators only; Nova silently drops the rest for others.
            "host" if ctx.is_admin => f.host = Some(v.clone()),
            "tenant_id" | "project_id" if ctx.is_admin => f.project_id = Some(v.clone()),
            // An administrator's, and from 2.83 anyone's (the query table
            // drops it for others before).
            "user_id" => f.user_id = Some(v.clone()),
            "deleted" if ctx.is_admin => f.deleted = Some(parse_bool(v).unwrap_or(false)),
            // The query table let the rest through only to those who may
            // use them (administrators; everyone for 2.83's and 2.90's).
            other => {
                if let Some(column) = Column::parse(other) {
                    if column.exact() {
                        match f.columns.iter_mut().find(|(c, _)| *c == column) {
                            Some((_, Match::Exact(values))) => values.push(v.clone()),
                            _ => f.columns.push((column, Match::Exact(vec![v.clone()]))),
                        }
                    } else if let Some(re) = search(v) {
                        f.columns.push((column, Match::Search(re)));
                    }
                }
            }
        }
    }
    if let (Some(since), Some(before)) = (f.changes_since, f.changes_before)
        && since > before
    {
        return Err(ApiError::bad_request(
            "The value of changes-since must be less than or equal to changes-before.",
        ));
    }
    Ok(f)
}

/// Lists the servers `ctx` may see, newest first, filtered and paged as
/// `params` ask.
pub fn list(
    app: &Domain,
    ctx: &Context,
    params: &[(String, String)],
    detail: bool,
    version: ApiVersion,
) -> Result<Page, ApiError> {
    let mut f = parse_filters(ctx, params, version)?;
    if !f.all_tenants {
        // As in Nova (lp:#1185290): without all_tenants, tenant_id is ignored.
        f.project_id = None;
    }
    if f.all_tenants {
        let rule = if detail {
            Rule::ServersDetailAllTenants
        } else {
            Rule::ServersIndexAllTenants
        };
        policy::authorize(ctx, rule, None)?;
    }
    if f.statuses.contains("DELETED") && !ctx.is_admin {
        return Err(ApiError::forbidden(
            "Only administrators may list deleted instances",
        ));
    }
    // Deleted servers show only when asked for: `deleted=true` (only
    // them), status DELETED, or changes-since (recent changes, deletions
    // included).
    let deleted_wanted = match f.deleted {
        Some(d) => Some(d),
        None if f.changes_since.is_some()
            || f.changes_before.is_some()
            || f.statuses.contains("DELETED") =>
        {
            None
        }
        None => Some(false),
    };
    let project = if f.all_tenants {
        f.project_id.clone()
    } else {
        Some(ctx.project_id.clone())
    };
    // The zone the server view shows: the host's, else the one asked for.
    let zone = |i: &Instance| match i.host.as_deref().and_then(|h| app.projection.host(h)) {
        Some(h) => h.availability_zone.clone(),
        None => i.availability_zone.clone().unwrap_or_default(),
    };
    let matches = |i: &Instance| {
        // Nova: soft-deleted servers are listed with the deleted ones
        // (`deleted=true`), not with the live ones.
        deleted_wanted
            .is_none_or(|d| (i.is_deleted() || i.vm_state == novalog_schemas::VmState::SoftDeleted) == d)
            && f.changes_since.is_none_or(|t| i.updated_at_ms >= t)
            && f.changes_before.is_none_or(|t| i.updated_at_ms <= t)
            && f.project_id.as_ref().is_none_or(|p| &i.project_id == p)
            && f.name.as_ref().is_none_or(|re| re.is_match(&i.name))
            && (f.statuses.is_empty() || f.statuses.contains(i.status()))
            && f
                .image
                .as_ref()
                .is_none_or(|id| i.image.id.to_string() == *id)
            && f.flavor.as_ref().is_none_or(|id| &i.flavor.id == id)
            && f
                .reservation_id
                .as_ref()
                .is_none_or(|r| &i.reservation_id == r)
            && f.host.as_ref().is_none_or(|h| i.host.as_ref() == Some(h))
            && f.user_id.as_ref().is_none_or(|u| &i.user_id == u)
            && f.tags_match(&i.tags)
            && f.locked.is_none_or(|l| i.is_locked() == l)
            && f
                .columns
                .iter()
                .all(|(c, m)| m.matches(c.value(i, &zone).as_deref()))
            // No server has an address yet, so no address matches.
            && !f.ip
    };
    // As Nova: the marker is any server the caller could list (deleted
    // ones included), whatever the other filters say.
    let order = super::server_sort::Order::from_params(params, version, ctx.is_admin)?;
    let marker = match &f.marker {
        Some(marker) => {
            let found = Uuid::parse_str(marker)
                .ok()
                .and_then(|id| app.projection.instance_with_deleted(&id))
                .filter(|i| project.as_ref().is_none_or(|p| &i.project_id == p))
                .filter(|i| ctx.is_admin || i.project_id == ctx.project_id);
            Some(
                found
                    .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?,
            )
        }
        None => None,
    };
    let limit = crate::domain::page_size(f.limit, app.max_limit);
    let mut servers = Vec::new();
    if limit > 0 && !order.is_newest_first() {
        // Any other order sorts every match: the projection's index is by
        // creation time only.
        app.projection
            .walk_instances(
                project.as_deref(),
                None,
                deleted_wanted != Some(false),
                |i| {
                    if matches(&i) {
                        servers.push(i);
                    }
                    true
                },
            )
            .map_err(|e| {
                tracing::error!(error = %e, "listing servers from the store");
                ApiError::internal("Unexpected API Error: the server list could not be read.")
            })?;
        servers.sort_by(|a, b| order.compare(a, b));
        if let Some(m) = &marker {
            servers.retain(|i| order.compare(m, i) == std::cmp::Ordering::Less);
        }
        servers.truncate(limit);
        return Ok(Page { servers });
    }
    let after = marker.map(|i| (i.created_at_ms, i.id));
    if limit > 0 {
        // Live servers are in memory; only a list that may show deleted
        // ones walks the store's index.
        app.projection
            .walk_instances(
                project.as_deref(),
                after,
                deleted_wanted != Some(false),
                |i| {
                    if matches(&i) {
                        servers.push(i);
                    }
                    servers.len() < limit
                },
            )
            .map_err(|e| {
                tracing::error!(error = %e, "listing servers from the store");
                ApiError::internal("Unexpected API Error: the server list could not be read.")
            })?;
    }
    Ok(Page { servers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_look_like_novas() {
        let r = reservation_id();
        assert!(r.starts_with("r-") && r.len() == 10, "{r}");
        assert!(
            r[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let p = admin_password();
        assert_eq!(p.len(), 12);
        assert!(!p.contains(['0', 'O', '1', 'l', 'I']), "{p}");
        assert_ne!(admin_password(), admin_password());
    }

    #[test]
    fn networks_that_cannot_exist_are_refused() {
        assert!(check_networks(&Networks::None).is_ok());
        assert!(check_networks(&Networks::Auto).is_ok());
        assert!(check_networks(&Networks::List(vec![])).is_ok());
        let uuid = Uuid::new_v4().to_string();
        let e = check_networks(&Networks::List(vec![NetworkRequest {
            uuid: Some(uuid.clone()),
            port: None,
            fixed_ip: None,
        }]))
        .unwrap_err();
        assert_eq!(e.message, format!("Network {uuid} could not be found."));
    }

    #[test]
    fn images_must_fit_their_flavor() {
        let flavor = crate::views::flavors::tests::tiny();
        let mut image = crate::views::servers::tests::cirros();
        assert!(check_image_fits(&flavor, &image).is_ok());
        image.min_ram = 1024;
        assert!(
            check_image_fits(&flavor, &image)
                .unwrap_err()
                .message
                .contains("memory")
        );
        image.min_ram = 0;
        image.size = 2 * 1024 * 1024 * 1024;
        assert!(
            check_image_fits(&flavor, &image)
                .unwrap_err()
                .message
                .contains("disk is too small")
        );
        // The defect of issue 9: `min_disk * GIB` overflowed and the
        // handler panicked. Every u64 is now a plain 400 with the exact size.
        image.size = 1;
        image.min_disk = u64::MAX;
        assert_eq!(
            check_image_fits(&flavor, &image).unwrap_err().message,
            format!(
                "Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is 1073741824 bytes, minimum size is {} bytes.",
                u128::from(u64::MAX) << 30
            )
        );
        image.min_disk = 1_099_511_627_776;
        assert!(
            check_image_fits(&flavor, &image)
                .unwrap_err()
                .message
                .ends_with("minimum size is 1180591620717411303424 bytes.")
        );
        let mut huge = flavor.clone();
        huge.disk_gb = u64::MAX;
        image.size = u64::MAX;
        assert!(
            check_image_fits(&huge, &image).is_ok(),
            "u64::MAX GiB hold any image"
        );
        image.min_disk = 0;
        image.status = "queued".into();
        assert!(
            check_image_fits(&flavor, &image)
                .unwrap_err()
                .message
                .contains("is not active")
        );
    }

    #[test]
    fn tag_filters_follow_nova() {
        let tags = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let f = |k: &str, v: &str| {
            parse_filters(
                &Context::admin(),
                &[(k.to_owned(), v.to_owned())],
                ApiVersion::new(2, 26),
            )
            .unwrap()
        };
        let server = tags(&["red", "green"]);
        assert!(f("tags", "red,green").tags_match(&server));
        assert!(!f("tags", "red,blue").tags_match(&server));
        assert!(f("tags-any", "blue,red").tags_match(&server));
        assert!(f("not-tags", "red,blue").tags_match(&server));
        assert!(!f("not-tags", "red,green").tags_match(&server));
        assert!(!f("not-tags-any", "blue,green").tags_match(&server));
        // Before 2.26 the filters do not exist.
        let old = parse_filters(
            &Context::admin(),
            &[("tags".into(), "blue".into())],
            ApiVersion::new(2, 25),
        )
        .unwrap();
        assert!(old.tags_match(&server));
    }

    #[test]
    fn column_filters_match_as_novas_database_does() {
        let mut i = crate::views::servers::tests::building("p1");
        i.key_name = Some("deploy-key".into());
        i.hostname = "web-1".into();
        let zone = |_: &Instance| "az1".to_owned();
        let f = |k: &str, v: &str| {
            let f = parse_filters(
                &Context::admin(),
                &[(k.to_owned(), v.to_owned())],
                ApiVersion::new(2, 83),
            )
            .unwrap();
            f.columns
                .iter()
                .all(|(c, m)| m.matches(c.value(&i, &zone).as_deref()))
        };
        // Searched: a part matches; exact: only the whole value.
        assert!(f("key_name", "deploy"));
        assert!(!f("key_name", "^key"));
        assert!(f("hostname", "^web-1$"));
        assert!(f("availability_zone", "az"));
        assert!(f("vm_state", "building"));
        assert!(!f("vm_state", "build"));
        assert!(f("task_state", "scheduling"));
        assert!(f("power_state", "0"));
        assert!(f("uuid", &i.id.to_string()));
        assert!(f("created_at", "^2013-09-03 04:01:32$"));
        // No value (NULL) matches nothing, not even an empty pattern.
        assert!(!f("launched_at", ""));
        assert!(!f("locked_by", ""));
        assert!(f("config_drive", "^$"));
        // Exact values given twice: either.
        let two = parse_filters(
            &Context::admin(),
            &[
                ("vm_state".to_owned(), "active".to_owned()),
                ("vm_state".to_owned(), "building".to_owned()),
            ],
            ApiVersion::new(2, 83),
        )
        .unwrap();
        assert_eq!(two.columns.len(), 1);
        assert!(two.columns[0].1.matches(Some("building")));
        // `locked` from 2.73, as oslo's strict boolean.
        let locked = |v: &str, minor| {
            parse_filters(
                &Context::admin(),
                &[("locked".to_owned(), v.to_owned())],
                ApiVersion::new(2, minor),
            )
        };
        assert_eq!(locked("true", 72).unwrap().locked, None);
        assert_eq!(locked("true", 73).unwrap().locked, Some(true));
        assert_eq!(locked("0", 73).unwrap().locked, Some(false));
        assert!(locked("maybe", 73).is_err());
    }

    #[test]
    fn unknown_statuses_are_refused_from_2_38() {
        let q = [("status".to_owned(), "bogus".to_owned())];
        assert!(parse_filters(&Context::admin(), &q, ApiVersion::new(2, 37)).is_ok());
        let e = parse_filters(&Context::admin(), &q, ApiVersion::new(2, 38)).unwrap_err();
        assert_eq!(e.message, "Invalid status value");
        let ok = [("status".to_owned(), "shutoff".to_owned())];
        assert!(parse_filters(&Context::admin(), &ok, ApiVersion::new(2, 38)).is_ok());
    }

    #[test]
    fn changes_before_from_2_66() {
        let q = |pairs: &[(&str, &str)], v| {
            let params: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            parse_filters(&Context::admin(), &params, ApiVersion::new(2, v))
        };
        let before = [("changes-before", "2013-09-03T04:01:32Z")];
        assert!(q(&before, 65).unwrap().changes_before.is_none());
        assert!(q(&before, 66).unwrap().changes_before.is_some());
        assert!(q(&[("changes-before", "soon")], 66).is_err());
        let e = q(
            &[
                ("changes-since", "2014-01-01T00:00:00Z"),
                ("changes-before", "2013-01-01T00:00:00Z"),
            ],
            66,
        )
        .unwrap_err();
        assert!(e.message.contains("must be less than or equal"));
    }

    #[test]
    fn times_parse_in_the_forms_clients_send() {
        let t = parse_time("2013-09-03T04:01:32Z").unwrap();
        assert_eq!(crate::views::isotime(t), "2013-09-03T04:01:32Z");
        assert_eq!(parse_time("2013-09-03T04:01:32.5"), Some(t + 500));
        assert_eq!(parse_time("2013-09-03T04:01:32+00:00"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }
}
