//! Glance's image rules, pure and shared by the API and the conductor.
//!
//! The conductor is the single writer of images: every change reaches it
//! as an *operation* (a JSON-patch, an upload step, a delete) and is
//! decided here against the image as it is when the intent is read, never
//! as a whole image computed from somebody's earlier copy. The API runs the
//! same decisions on its projection first, so that a request that cannot
//! succeed is refused without writing anything.
//!
//! Sources: `glance/domain/__init__.py` (status transitions, formats only
//! while queued), `glance/api/v2/images.py` (JSON-patch, the image schema's
//! `maxLength`s, read-only attributes), `glance/quota` (property and tag
//! quotas), `glance/db/sqlalchemy/api.py` (`_validate_db_int`),
//! `glance/api/v2/image_data.py` (upload) and `glance/policies` (who may).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::rejection::{Rejection, RejectionKind};
use crate::values::Image;

/// Glance's `image_property_quota` default.
pub const PROPERTY_QUOTA: usize = 128;
/// Glance's `image_tag_quota` default.
pub const TAG_QUOTA: usize = 128;
/// Glance's `image_size_cap` default: 1 TiB.
pub const IMAGE_SIZE_CAP: u64 = 1 << 40;
/// `min_disk` and `min_ram` are 4-byte integers in Glance's database
/// (`_validate_db_int`).
pub const MAX_DB_INT: u64 = (1 << 31) - 1;
/// The schema's `maxLength` of `name` and of each tag, and Glance's limit
/// on a custom property's name.
pub const MAX_NAME: usize = 255;
/// A custom property's value is a `TEXT` column in Glance's database.
pub const MAX_PROPERTY_VALUE: usize = 65_535;

pub const QUEUED: &str = "queued";
pub const SAVING: &str = "saving";
pub const ACTIVE: &str = "active";
pub const DELETED: &str = "deleted";
pub const DEACTIVATED: &str = "deactivated";
/// Data staged for the import API (`PUT /v2/images/{id}/stage`).
pub const UPLOADING: &str = "uploading";
/// An import moving staged data into the store.
pub const IMPORTING: &str = "importing";

/// Glance's `image_member_quota` default.
pub const MEMBER_QUOTA: usize = 128;
/// An image member's statuses; a new member is pending.
pub const MEMBER_STATUSES: &[&str] = &["pending", "accepted", "rejected"];

/// Glance's `disk_formats` and `container_formats` defaults.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
pub const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];

/// Attributes the server sets; a client naming one gets Glance's 403.
pub const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "owner",
];

/// Core attributes that `remove` may not take away.
pub const CORE: &[&str] = &[
    "name",
    "visibility",
    "protected",
    "disk_format",
    "container_format",
    "min_ram",
    "min_disk",
    "tags",
    "os_hidden",
];

/// Why Glance refuses a request; [`Refusal::kind`] says what went wrong
/// (the API answers it with Glance's status for that kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the request itself is malformed or out of bounds.
    #[error("{0}")]
    Invalid(String),
    /// 403: policy, a read-only attribute, a protected image.
    #[error("{0}")]
    NotPermitted(String),
    /// 404: no such image, or one the caller may not see.
    #[error("{0}")]
    NotFound(String),
    /// 409: not possible in the image's current state.
    #[error("{0}")]
    Conflict(String),
    /// 410: the image went away while its data was being uploaded.
    #[error("{0}")]
    Gone(String),
    /// 413: a quota or the size cap.
    #[error("{0}")]
    OverLimit(String),
}

impl Refusal {
    /// What went wrong, as a rejection kind (the API maps it to Glance's
    /// status).
    pub fn kind(&self) -> RejectionKind {
        match self {
            Refusal::Invalid(_) => RejectionKind::Invalid,
            Refusal::NotPermitted(_) => RejectionKind::Forbidden,
            Refusal::NotFound(_) => RejectionKind::NotFound,
            Refusal::Conflict(_) => RejectionKind::Conflict,
            Refusal::Gone(_) => RejectionKind::Gone,
            Refusal::OverLimit(_) => RejectionKind::OverLimit,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Refusal::Invalid(m)
            | Refusal::NotPermitted(m)
            | Refusal::NotFound(m)
            | Refusal::Conflict(m)
            | Refusal::Gone(m)
            | Refusal::OverLimit(m) => m,
        }
    }
}

impl From<Refusal> for Rejection {
    fn from(r: Refusal) -> Self {
        Rejection::new(r.kind(), r.message())
    }
}

type Result<T, E = Refusal> = std::result::Result<T, E>;

// ---- policy ----

/// Who asks, as Glance's policy sees them.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub project_id: &'a str,
    pub roles: &'a [String],
}

impl Caller<'_> {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has("admin")
    }

    /// Keystone's default implied roles: admin implies member.
    pub fn is_member(&self) -> bool {
        self.is_admin() || self.has("member")
    }

    /// ... and member implies reader.
    pub fn is_reader(&self) -> bool {
        self.is_member() || self.has("reader")
    }
}

/// Glance's image policies (`glance/policies/image.py`), by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AddImage,
    GetImages,
    GetImage,
    ModifyImage,
    PublicizeImage,
    CommunitizeImage,
    DeleteImage,
    UploadImage,
    DownloadImage,
    AddMember,
    DeleteMember,
    GetMember,
    GetMembers,
    ModifyMember,
    Deactivate,
    Reactivate,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::AddImage => "add_image",
            Action::GetImages => "get_images",
            Action::GetImage => "get_image",
            Action::ModifyImage => "modify_image",
            Action::PublicizeImage => "publicize_image",
            Action::CommunitizeImage => "communitize_image",
            Action::DeleteImage => "delete_image",
            Action::UploadImage => "upload_image",
            Action::DownloadImage => "download_image",
            Action::AddMember => "add_member",
            Action::DeleteMember => "delete_member",
            Action::GetMember => "get_member",
            Action::GetMembers => "get_members",
            Action::ModifyMember => "modify_member",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
        }
    }
}

/// Whether `project` is a member of `image` (any status): Glance shows a
/// shared image to its members whether or not they accepted it.
pub fn is_member_of(image: &Image, project: &str) -> bool {
    image.visibility == "shared" && image.members.iter().any(|m| m.member_id == project)
}

/// Glance's default rule for `action` on `image` (`None`: an image the
/// caller is creating, owned by the caller's project). Other projects see
/// public and community images, and shared ones they are members of.
/// `modify_member` also needs the caller to be the member concerned,
/// which [`decide_change`] checks.
pub fn allowed(action: Action, caller: &Caller<'_>, image: Option<&Image>) -> bool {
    if caller.is_admin() {
        return true;
    }
    let own = image.is_none_or(|i| i.owner == caller.project_id);
    let open = image.is_some_and(|i| matches!(i.visibility.as_str(), "public" | "community"));
    let member = image.is_some_and(|i| is_member_of(i, caller.project_id));
    match action {
        // ADMIN_OR_PROJECT_READER on the caller's own project.
        Action::GetImages => caller.is_reader(),
        Action::GetImage => caller.is_reader() && (own || open || member),
        Action::DownloadImage => caller.is_member() && (own || open || member),
        Action::GetMember | Action::GetMembers => caller.is_reader() && (own || member),
        Action::ModifyMember => caller.is_member() && member,
        Action::AddImage
        | Action::ModifyImage
        | Action::CommunitizeImage
        | Action::DeleteImage
        | Action::UploadImage
        | Action::AddMember
        | Action::DeleteMember
        | Action::Deactivate
        | Action::Reactivate => caller.is_member() && own,
        Action::PublicizeImage => false,
    }
}

/// [`allowed`], as Glance's 403 when not.
pub fn authorize(action: Action, caller: &Caller<'_>, image: Option<&Image>) -> Result<()> {
    if allowed(action, caller, image) {
        Ok(())
    } else {
        Err(not_authorized(action))
    }
}

fn not_authorized(action: Action) -> Refusal {
    Refusal::NotPermitted(format!(
        "You are not authorized to complete {} action.",
        action.name()
    ))
}

fn not_found(id: &Uuid) -> Refusal {
    Refusal::NotFound(format!("No image found with ID {id}"))
}

/// The image as `caller` may act on it: known, not deleted and visible
/// (Glance answers 404, not 403, for an image one cannot see), and
/// `action` allowed on it.
fn live<'a>(
    current: Option<&'a Image>,
    id: &Uuid,
    caller: &Caller<'_>,
    action: Action,
) -> Result<&'a Image> {
    let image = current
        .filter(|i| i.status != DELETED && allowed(Action::GetImage, caller, Some(i)))
        .ok_or_else(|| not_found(id))?;
    authorize(action, caller, Some(image))?;
    Ok(image)
}

// ---- attributes and bounds ----

/// Sets one attribute (core or custom property) as a create body or a
/// patch `add`/`replace` does, with the schema's types and bounds.
pub fn set(caller: &Caller<'_>, image: &mut Image, key: &str, value: &Value) -> Result<()> {
    let invalid = || Refusal::Invalid(format!("Invalid value for attribute '{key}'"));
    let str_or_null = |v: &Value| -> Result<String> {
        match v {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid()),
        }
    };
    let one_of = |v: &Value, allowed: &[&str]| -> Result<String> {
        let s = str_or_null(v)?;
        if s.is_empty() || allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(Refusal::Invalid(format!(
                "Invalid value '{s}' for parameter '{key}': must be one of {}",
                allowed.join(", ")
            )))
        }
    };
    match key {
        // Only an administrator gives an image to another project
        // (Glance's `check_admin_or_same_owner`).
        "owner" => {
            let owner = str_or_null(value)?;
            if !caller.is_admin() && owner != caller.project_id {
                return Err(Refusal::NotPermitted(format!(
                    "You are not permitted to create images owned by '{owner}'."
                )));
            }
            if owner.is_empty() || owner.chars().count() > MAX_NAME {
                return Err(invalid());
            }
            image.owner = owner;
        }
        k if READ_ONLY.contains(&k) => {
            return Err(Refusal::NotPermitted(format!(
                "Attribute '{k}' is read-only."
            )));
        }
        "name" => {
            let s = str_or_null(value)?;
            if s.chars().count() > MAX_NAME {
                return Err(invalid());
            }
            image.name = s;
        }
        "visibility" => {
            let s = one_of(value, VISIBILITIES)?;
            if s.is_empty() {
                return Err(invalid());
            }
            match s.as_str() {
                "public" => authorize(Action::PublicizeImage, caller, Some(image))?,
                "community" => authorize(Action::CommunitizeImage, caller, Some(image))?,
                _ => {}
            }
            image.visibility = s;
        }
        "protected" => image.protected = value.as_bool().ok_or_else(invalid)?,
        "os_hidden" => {
            value.as_bool().ok_or_else(invalid)?;
        }
        // Glance's domain: the formats describe the data, so they change
        // only before there is any.
        "disk_format" | "container_format" if image.status != QUEUED => {
            return Err(Refusal::NotPermitted(format!(
                "Attribute {key} can be only replaced for a queued image."
            )));
        }
        "disk_format" => image.disk_format = one_of(value, DISK_FORMATS)?,
        "container_format" => image.container_format = one_of(value, CONTAINER_FORMATS)?,
        "min_ram" => image.min_ram = db_int(key, value)?,
        "min_disk" => image.min_disk = db_int(key, value)?,
        "tags" => {
            let tags = value.as_array().ok_or_else(invalid)?;
            let mut out: Vec<String> = Vec::with_capacity(tags.len().min(TAG_QUOTA + 1));
            for t in tags {
                let t = t.as_str().ok_or_else(invalid)?;
                if t.chars().count() > MAX_NAME {
                    return Err(invalid());
                }
                if !out.iter().any(|x| x == t) {
                    out.push(t.to_owned());
                }
            }
            check_tag_quota(out.len())?;
            image.tags = out;
        }
        k => {
            // Glance's schema: additional properties are strings.
            let Value::String(s) = value else {
                return Err(Refusal::Invalid(format!(
                    "Invalid value for property '{k}': must be a string"
                )));
            };
            check_property(k, s)?;
            image.properties.insert(k.to_owned(), s.clone());
        }
    }
    Ok(())
}

/// A non-negative integer Glance's database can hold.
fn db_int(key: &str, value: &Value) -> Result<u64> {
    let n = value.as_u64().ok_or_else(|| {
        Refusal::Invalid(format!(
            "Invalid value for '{key}': must be an integer >= 0"
        ))
    })?;
    if n > MAX_DB_INT {
        return Err(Refusal::Invalid(format!(
            "'{key}' value out of range, must not exceed {MAX_DB_INT}."
        )));
    }
    Ok(n)
}

fn check_property(key: &str, value: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Refusal::Invalid(format!("Invalid property name '{key}'")));
    }
    if key.chars().count() > MAX_NAME {
        return Err(Refusal::Invalid(
            "Custom property should not be greater than 255 characters.".into(),
        ));
    }
    if value.len() > MAX_PROPERTY_VALUE {
        return Err(Refusal::Invalid(format!(
            "Invalid value for property '{key}': longer than {MAX_PROPERTY_VALUE} bytes"
        )));
    }
    Ok(())
}

fn check_tag_quota(n: usize) -> Result<()> {
    if n > TAG_QUOTA {
        return Err(Refusal::OverLimit(format!(
            "The limit has been exceeded on the number of allowed image tags. Attempted: {n}, Maximum: {TAG_QUOTA}"
        )));
    }
    Ok(())
}

fn check_property_quota(n: usize) -> Result<()> {
    if n > PROPERTY_QUOTA {
        return Err(Refusal::OverLimit(format!(
            "The limit has been exceeded on the number of allowed image properties. Attempted: {n}, Maximum: {PROPERTY_QUOTA}"
        )));
    }
    Ok(())
}

fn check_size(size: u64) -> Result<()> {
    if size > IMAGE_SIZE_CAP {
        return Err(too_large());
    }
    Ok(())
}

/// Glance's answer to data beyond `image_size_cap`.
pub fn too_large() -> Refusal {
    Refusal::OverLimit("The incoming image is too large: The provided image is too large.".into())
}

/// Every bound of Glance's schema and quotas on a whole image, as a create
/// carries it.
pub fn check_bounds(image: &Image) -> Result<()> {
    if image.name.chars().count() > MAX_NAME {
        return Err(Refusal::Invalid(
            "Invalid value for attribute 'name'".into(),
        ));
    }
    for (key, n) in [("min_disk", image.min_disk), ("min_ram", image.min_ram)] {
        db_int(key, &Value::from(n))?;
    }
    check_property_quota(image.properties.len())?;
    for (k, v) in &image.properties {
        if CORE.contains(&k.as_str()) || READ_ONLY.contains(&k.as_str()) {
            return Err(Refusal::Invalid(format!("Invalid property name '{k}'")));
        }
        check_property(k, v)?;
    }
    check_tag_quota(image.tags.len())?;
    if image.tags.iter().any(|t| t.chars().count() > MAX_NAME) {
        return Err(Refusal::Invalid(
            "Invalid value for attribute 'tags'".into(),
        ));
    }
    if !VISIBILITIES.contains(&image.visibility.as_str()) {
        return Err(Refusal::Invalid(
            "Invalid value for attribute 'visibility'".into(),
        ));
    }
    for (key, value, allowed) in [
        ("disk_format", &image.disk_format, DISK_FORMATS),
        (
            "container_format",
            &image.container_format,
            CONTAINER_FORMATS,
        ),
    ] {
        if !value.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(Refusal::Invalid(format!(
                "Invalid value '{value}' for parameter '{key}'"
            )));
        }
    }
    check_size(image.size)
}

// ---- create and delete ----

/// A create: the id is new, the caller may add an image with this
/// visibility, and only an administrator registers one that already has
/// data (the bootstrap's demo image); everyone else's starts queued.
pub fn decide_create(
    existing: Option<&Image>,
    image: &Image,
    caller: &Caller<'_>,
) -> Result<Image> {
    if existing.is_some() {
        return Err(Refusal::Conflict(format!(
            "Image with identifier {} already exists!",
            image.id
        )));
    }
    authorize(Action::AddImage, caller, Some(image))?;
    match image.visibility.as_str() {
        "public" => authorize(Action::PublicizeImage, caller, Some(image))?,
        "community" => authorize(Action::CommunitizeImage, caller, Some(image))?,
        _ => {}
    }
    if !caller.is_admin()
        && (image.status != QUEUED || image.size != 0 || !image.checksum.is_empty())
    {
        return Err(Refusal::NotPermitted(
            "Attribute 'status' is read-only.".into(),
        ));
    }
    check_bounds(image)?;
    Ok(image.clone())
}

/// A delete: the image stays as `deleted` so its id is never reused.
pub fn decide_delete(current: Option<&Image>, id: &Uuid, caller: &Caller<'_>) -> Result<Image> {
    let image = live(current, id, caller, Action::DeleteImage)?;
    if image.protected {
        return Err(Refusal::NotPermitted(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    let mut deleted = image.clone();
    deleted.status = DELETED.into();
    Ok(deleted)
}

// ---- JSON-patch ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatchVerb {
    Add,
    Replace,
    Remove,
}

impl PatchVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchVerb::Add => "add",
            PatchVerb::Replace => "replace",
            PatchVerb::Remove => "remove",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "add" => PatchVerb::Add,
            "replace" => PatchVerb::Replace,
            "remove" => PatchVerb::Remove,
            _ => return None,
        })
    }
}

/// One operation of Glance's JSON-patch, on one top-level attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOp {
    pub verb: PatchVerb,
    /// The attribute the path names (`/name` → `name`).
    pub attribute: String,
    /// What `add` and `replace` set; `None` for `remove`.
    pub value: Option<Value>,
}

/// `PATCH /v2/images/{id}` as an intent: the operations themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePatch {
    pub image_id: Uuid,
    pub ops: Vec<PatchOp>,
}

/// Glance's JSON-patch body (`application/openstack-images-v2.1-json-patch`)
/// as operations: only its syntax is checked here.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>> {
    let Value::Array(ops) = body else {
        return Err(Refusal::Invalid(
            "Request body must be a JSON array of operation objects.".into(),
        ));
    };
    ops.iter()
        .map(|op| {
            let Some(obj) = op.as_object() else {
                return Err(Refusal::Invalid("Operations must be JSON objects.".into()));
            };
            let verb = obj.get("op").and_then(Value::as_str).ok_or_else(|| {
                Refusal::Invalid("Unable to find 'op' in JSON Schema change".into())
            })?;
            let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| {
                Refusal::Invalid("Unable to find 'path' in JSON Schema change".into())
            })?;
            let attribute = attribute(path)?;
            let verb = PatchVerb::parse(verb).ok_or_else(|| {
                Refusal::Invalid(format!(
                    "Invalid operation: `{verb}`: Operation must be one of add, replace, remove."
                ))
            })?;
            let value = match verb {
                PatchVerb::Remove => None,
                PatchVerb::Add | PatchVerb::Replace => Some(
                    obj.get("value")
                        .ok_or_else(|| {
                            Refusal::Invalid("Unable to find 'value' in JSON Schema change".into())
                        })?
                        .clone(),
                ),
            };
            Ok(PatchOp {
                verb,
                attribute,
                value,
            })
        })
        .collect()
}

/// The older patch format (`application/openstack-images-v2.0-json-patch`):
/// each operation names its verb as the key of its path,
/// `{"replace": "/name", "value": "x"}`.
pub fn parse_patch_v20(body: &Value) -> Result<Vec<PatchOp>> {
    let Value::Array(ops) = body else {
        return Err(Refusal::Invalid(
            "Request body must be a JSON array of operation objects.".into(),
        ));
    };
    ops.iter()
        .map(|op| {
            let Some(obj) = op.as_object() else {
                return Err(Refusal::Invalid("Operations must be JSON objects.".into()));
            };
            let verbs: Vec<PatchVerb> = ["add", "replace", "remove"]
                .iter()
                .filter(|v| obj.contains_key(**v))
                .filter_map(|v| PatchVerb::parse(v))
                .collect();
            let [verb] = verbs[..] else {
                return Err(Refusal::Invalid(
                    "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".".into(),
                ));
            };
            let path = obj.get(verb.as_str()).and_then(Value::as_str).ok_or_else(|| {
                Refusal::Invalid(format!("Unable to find '{}' in JSON Schema change", verb.as_str()))
            })?;
            let attribute = attribute(path)?;
            let value = match verb {
                PatchVerb::Remove => None,
                PatchVerb::Add | PatchVerb::Replace => Some(
                    obj.get("value")
                        .ok_or_else(|| {
                            Refusal::Invalid("Unable to find 'value' in JSON Schema change".into())
                        })?
                        .clone(),
                ),
            };
            Ok(PatchOp {
                verb,
                attribute,
                value,
            })
        })
        .collect()
}

/// `/name` → `name` (RFC 6901 escapes undone); deeper paths are refused.
pub fn attribute(path: &str) -> Result<String> {
    let invalid = || Refusal::Invalid(format!("Invalid JSON pointer for this resource: '{path}'"));
    let rest = path.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() || rest.contains('/') {
        return Err(invalid());
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Applies `ops` to the image as it is now, as Glance's `update` does:
/// all of them or none. `now_ms` becomes `updated_at` when anything
/// changed; an image left as it was is returned unchanged.
pub fn decide_patch(
    current: Option<&Image>,
    id: &Uuid,
    ops: &[PatchOp],
    caller: &Caller<'_>,
    now_ms: i64,
) -> Result<Image> {
    let image = live(current, id, caller, Action::ModifyImage)?;
    let mut next = image.clone();
    for op in ops {
        let key = op.attribute.as_str();
        match (op.verb, &op.value) {
            (PatchVerb::Add | PatchVerb::Replace, Some(value)) => {
                let custom = !CORE.contains(&key) && !READ_ONLY.contains(&key);
                if op.verb == PatchVerb::Replace && custom && !next.properties.contains_key(key) {
                    return Err(Refusal::Conflict(format!("Property {key} does not exist.")));
                }
                set(caller, &mut next, key, value)?;
            }
            (PatchVerb::Add | PatchVerb::Replace, None) => {
                return Err(Refusal::Invalid(
                    "Unable to find 'value' in JSON Schema change".into(),
                ));
            }
            (PatchVerb::Remove, _) => {
                if READ_ONLY.contains(&key) || CORE.contains(&key) {
                    return Err(Refusal::NotPermitted(format!(
                        "Attribute '{key}' can't be removed."
                    )));
                }
                if next.properties.remove(key).is_none() {
                    return Err(Refusal::Conflict(format!("Property {key} does not exist.")));
                }
            }
        }
    }
    // Glance counts properties only when some were added, so an image
    // over the quota can still lose some.
    if next.properties.len() > image.properties.len()
        || next
            .properties
            .keys()
            .any(|k| !image.properties.contains_key(k))
    {
        check_property_quota(next.properties.len())?;
    }
    if next != *image {
        next.updated_at_ms = now_ms;
    }
    Ok(next)
}

// ---- upload: queued → saving → active, once ----

/// What an upload stored, measured by the API as the bytes went by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageData {
    pub image_id: Uuid,
    pub size: u64,
    /// md5, hex (Glance's `checksum`).
    pub checksum: String,
    /// sha512, hex (Glance's `os_hash_value`).
    pub os_hash_value: String,
}

/// The guarded move every upload step makes: from `from` to `to`, or
/// Glance's 409 naming the move refused.
fn step(image: &Image, from: &str, to: &str, now_ms: i64) -> Result<Image> {
    if image.status != from {
        return Err(transition(image, to));
    }
    let mut next = image.clone();
    next.status = to.into();
    next.updated_at_ms = now_ms;
    Ok(next)
}

fn transition(image: &Image, to: &str) -> Refusal {
    Refusal::Conflict(format!(
        "Image status transition from {} to {to} is not allowed",
        image.status
    ))
}

/// An upload begins: only a queued image takes data, and only one upload
/// at a time (a second one meets `saving`, or `active`, and is refused).
pub fn decide_upload_start(
    current: Option<&Image>,
    id: &Uuid,
    caller: &Caller<'_>,
    now_ms: i64,
) -> Result<Image> {
    let image = live(current, id, caller, Action::UploadImage)?;
    step(image, QUEUED, SAVING, now_ms)
}

/// The data is stored: the saving image becomes active with its size and
/// digests, which are never set again.
pub fn decide_upload_finish(
    current: Option<&Image>,
    data: &ImageData,
    caller: &Caller<'_>,
    now_ms: i64,
) -> Result<Image> {
    let id = &data.image_id;
    let image = live(current, id, caller, Action::UploadImage).map_err(|e| match e {
        Refusal::NotFound(_) => Refusal::Gone(format!(
            "Image {id} could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded."
        )),
        other => other,
    })?;
    // An upload's data arrives saving; an import's, importing.
    let from = if image.status == IMPORTING {
        IMPORTING
    } else {
        SAVING
    };
    let mut next = step(image, from, ACTIVE, now_ms)?;
    check_size(data.size)?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(&data.checksum, 32) || !hex(&data.os_hash_value, 128) {
        return Err(Refusal::Invalid("Invalid image data digests.".into()));
    }
    next.size = data.size;
    next.checksum = data.checksum.clone();
    next.os_hash_value = data.os_hash_value.clone();
    Ok(next)
}

/// The upload failed: back to queued with no data, so it can be retried
/// (Glance's `_restore`).
pub fn decide_upload_abort(
    current: Option<&Image>,
    id: &Uuid,
    caller: &Caller<'_>,
    now_ms: i64,
) -> Result<Image> {
    let image = live(current, id, caller, Action::UploadImage)?;
    let mut next = step(image, SAVING, QUEUED, now_ms)?;
    next.size = 0;
    next.checksum.clear();
    next.os_hash_value.clear();
    Ok(next)
}

// ---- members, tags, deactivation, the import API ----

/// A change to an image other than a patch or an upload, as an intent
/// carries it (`ImageChangeRequested`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageChange {
    /// `POST /v2/images/{id}/members`: the owner shares the image.
    AddMember { member: String },
    /// `PUT /v2/images/{id}/members/{member}`: the member answers.
    SetMemberStatus { member: String, status: String },
    /// `DELETE /v2/images/{id}/members/{member}`: the owner unshares.
    RemoveMember { member: String },
    /// `PUT /v2/images/{id}/tags/{tag}`.
    AddTag { tag: String },
    /// `DELETE /v2/images/{id}/tags/{tag}`.
    RemoveTag { tag: String },
    /// `POST /v2/images/{id}/actions/deactivate`: active → deactivated.
    Deactivate,
    /// `POST /v2/images/{id}/actions/reactivate`: deactivated → active.
    Reactivate,
    /// `PUT /v2/images/{id}/stage` begins: queued → uploading.
    StageStart,
    /// The staged bytes are on the staging node: their size.
    Staged { size: u64 },
    /// Staging failed: uploading → queued, no data.
    StageAbort,
    /// `POST /v2/images/{id}/import` (`glance-direct`): uploading →
    /// importing; `ImageUploadFinishRequested` then makes it active.
    ImportStart,
    /// The import failed: importing → queued, no data.
    ImportAbort,
}

impl ImageChange {
    /// Its name on the wire.
    pub fn op(&self) -> &'static str {
        match self {
            ImageChange::AddMember { .. } => "member-add",
            ImageChange::SetMemberStatus { .. } => "member-status",
            ImageChange::RemoveMember { .. } => "member-remove",
            ImageChange::AddTag { .. } => "tag-add",
            ImageChange::RemoveTag { .. } => "tag-remove",
            ImageChange::Deactivate => "deactivate",
            ImageChange::Reactivate => "reactivate",
            ImageChange::StageStart => "stage-start",
            ImageChange::Staged { .. } => "staged",
            ImageChange::StageAbort => "stage-abort",
            ImageChange::ImportStart => "import-start",
            ImageChange::ImportAbort => "import-abort",
        }
    }
}

fn member_not_found(member: &str, id: &Uuid) -> Refusal {
    Refusal::NotFound(format!(
        "{member} not found in the member list of the image {id}."
    ))
}

/// The member `member` of `image` as `caller` may look it up: the owner
/// (and an administrator) sees every member, a member only itself.
pub fn find_member<'a>(
    image: &'a Image,
    member: &str,
    caller: &Caller<'_>,
) -> Result<&'a crate::values::ImageMember> {
    let found = image.members.iter().find(|m| m.member_id == member);
    match found {
        Some(m) if caller.is_admin() || image.owner == caller.project_id => Ok(m),
        Some(m) if m.member_id == caller.project_id && caller.is_reader() => Ok(m),
        _ => Err(member_not_found(member, &image.id)),
    }
}

/// Glance's checks before the import API moves an image, in its order
/// and words (`glance/api/v2/images.py`, `import_image`).
pub fn check_importable(image: &Image) -> Result<()> {
    if image.status == ACTIVE {
        return Err(Refusal::Conflict(
            "Image with status active cannot be target for import".into(),
        ));
    }
    if image.status != UPLOADING {
        return Err(Refusal::Conflict(
            "Image needs to be staged before 'glance-direct' method can be used".into(),
        ));
    }
    if image.container_format.is_empty() {
        return Err(Refusal::Conflict(
            "'container_format' needs to be set before import".into(),
        ));
    }
    if image.disk_format.is_empty() {
        return Err(Refusal::Conflict(
            "'disk_format' needs to be set before import".into(),
        ));
    }
    Ok(())
}

/// Applies `change` to the image as it is now, with Glance's rules and
/// answers; an image left as it was (a tag it has, deactivating a
/// deactivated image) is returned unchanged.
pub fn decide_change(
    current: Option<&Image>,
    id: &Uuid,
    change: &ImageChange,
    caller: &Caller<'_>,
    now_ms: i64,
) -> Result<Image> {
    // Every change needs the image visible first (404 otherwise).
    let image = live(current, id, caller, Action::GetImage)?;
    let mut next = image.clone();
    let forbidden =
        |what: &str| Refusal::NotPermitted(format!("Not allowed to {what} for image {id}."));
    match change {
        ImageChange::AddMember { member } => {
            if image.visibility != "shared" || !allowed(Action::AddMember, caller, Some(image)) {
                return Err(forbidden("create members"));
            }
            if member.is_empty() || member.chars().count() > MAX_NAME {
                return Err(Refusal::Invalid("Member can't be empty".into()));
            }
            if image.members.iter().any(|m| &m.member_id == member) {
                return Err(Refusal::Conflict(format!(
                    "Member {member} is duplicated for image {id}"
                )));
            }
            if image.members.len() >= MEMBER_QUOTA {
                return Err(Refusal::OverLimit(format!(
                    "Image member limit exceeded for image {id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: {}, Maximum: {MEMBER_QUOTA}:",
                    image.members.len() + 1
                )));
            }
            next.members.push(crate::values::ImageMember {
                member_id: member.clone(),
                status: "pending".into(),
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            });
        }
        ImageChange::SetMemberStatus { member, status } => {
            if image.visibility != "shared" {
                return Err(forbidden("update members"));
            }
            find_member(image, member, caller)?;
            // Only the member answers for itself (an administrator may too).
            if !(caller.is_admin() || (caller.is_member() && caller.project_id == member.as_str()))
            {
                return Err(forbidden("update members"));
            }
            if !MEMBER_STATUSES.contains(&status.as_str()) {
                return Err(Refusal::Invalid(
                    "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\"."
                        .into(),
                ));
            }
            if let Some(m) = next.members.iter_mut().find(|m| &m.member_id == member)
                && m.status != *status
            {
                m.status = status.clone();
                m.updated_at_ms = now_ms;
            }
        }
        ImageChange::RemoveMember { member } => {
            if image.visibility != "shared" {
                return Err(forbidden("delete members"));
            }
            find_member(image, member, caller)?;
            if !allowed(Action::DeleteMember, caller, Some(image)) {
                return Err(forbidden("delete members"));
            }
            next.members.retain(|m| &m.member_id != member);
        }
        ImageChange::AddTag { tag } => {
            if !allowed(Action::ModifyImage, caller, Some(image)) {
                return Err(forbidden("update tags"));
            }
            if tag.chars().count() > MAX_NAME {
                return Err(Refusal::Invalid(format!(
                    "Could not update image: Invalid value for attribute 'tags': '{tag}' is too long"
                )));
            }
            if !next.tags.contains(tag) {
                next.tags.push(tag.clone());
                if next.tags.len() > TAG_QUOTA {
                    return Err(Refusal::OverLimit(format!(
                        "Image tag limit exceeded for image {id}: The limit has been exceeded on the number of allowed image tags. Attempted: {}, Maximum: {TAG_QUOTA}:",
                        next.tags.len()
                    )));
                }
            }
        }
        ImageChange::RemoveTag { tag } => {
            if !allowed(Action::ModifyImage, caller, Some(image)) {
                return Err(forbidden("delete tags"));
            }
            if !next.tags.contains(tag) {
                return Err(Refusal::NotFound("The resource could not be found.".into()));
            }
            next.tags.retain(|t| t != tag);
        }
        ImageChange::Deactivate | ImageChange::Reactivate => {
            let (action, from, to, verb) = match change {
                ImageChange::Deactivate => (Action::Deactivate, ACTIVE, DEACTIVATED, "deactivate"),
                _ => (Action::Reactivate, DEACTIVATED, ACTIVE, "reactivate"),
            };
            authorize(action, caller, Some(image))?;
            if image.status == from {
                next.status = to.into();
            } else if image.status != to {
                return Err(Refusal::NotPermitted(format!(
                    "Not allowed to {verb} image in status '{}'",
                    image.status
                )));
            }
        }
        ImageChange::StageStart => {
            authorize(Action::ModifyImage, caller, Some(image))?;
            next = step(image, QUEUED, UPLOADING, now_ms)?;
        }
        ImageChange::Staged { size } => {
            authorize(Action::ModifyImage, caller, Some(image))?;
            if image.status != UPLOADING {
                return Err(transition(image, UPLOADING));
            }
            check_size(*size)?;
            next.size = *size;
        }
        ImageChange::StageAbort | ImageChange::ImportAbort => {
            authorize(Action::ModifyImage, caller, Some(image))?;
            let from = match change {
                ImageChange::StageAbort => UPLOADING,
                _ => IMPORTING,
            };
            next = step(image, from, QUEUED, now_ms)?;
            next.size = 0;
            next.checksum.clear();
            next.os_hash_value.clear();
        }
        ImageChange::ImportStart => {
            authorize(Action::ModifyImage, caller, Some(image))?;
            check_importable(image)?;
            next = step(image, UPLOADING, IMPORTING, now_ms)?;
        }
    }
    if next != *image {
        next.updated_at_ms = now_ms;
    }
    Ok(next)
}

// ---- the upload lease ----

/// How long an upload may hold an image `saving` by default: past it, the
/// upload is taken for dead (its API crashed mid-body, on a replica that
/// may never start again to abort it) and the image goes back to queued.
/// Glance has no such bound, and its images stay `saving` for good.
pub const DEFAULT_UPLOAD_LEASE_MS: i64 = 3_600_000;

/// Who returns an image whose upload lease ran out: the API replicas'
/// lease keeper writes as this service user (project `service`, role
/// `service`), and the conductor decides its aborts by the lease
/// ([`decide_upload_expiry`]), not by Glance's policy.
pub const LEASE_KEEPER: &str = "image-upload-lease";

/// Whether an abort by `user_id` with `roles` is the lease keeper's.
pub fn is_lease_keeper(user_id: &str, project_id: &str, roles: &[String]) -> bool {
    user_id == LEASE_KEEPER && project_id == "service" && roles.iter().any(|r| r == "service")
}

/// Whether `image`'s upload lease has run out at `now_ms`: it is saving
/// and has not changed for `lease_ms` (a patch while it saves counts as a
/// change, so the lease runs from the image's last change).
pub fn upload_lease_expired(image: &Image, now_ms: i64, lease_ms: i64) -> bool {
    image.status == SAVING && now_ms.saturating_sub(image.updated_at_ms) >= lease_ms
}

/// An upload's abort, decided by who asks: the lease keeper's by the
/// lease ([`decide_upload_expiry`]), anyone else's by Glance's policy
/// ([`decide_upload_abort`]).
pub fn decide_abort_by(
    current: Option<&Image>,
    id: &Uuid,
    actor: &crate::Actor,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Image> {
    if is_lease_keeper(&actor.user_id, &actor.project_id, &actor.roles) {
        decide_upload_expiry(current, id, now_ms, lease_ms)
    } else {
        decide_upload_abort(current, id, &actor.image_caller(), now_ms)
    }
}

/// An upload whose lease ran out by `now_ms` (the abort's own time, so a
/// replay decides the same): back to queued with no data, as an aborted
/// upload. Refused when the image is not saving or has changed within the
/// lease: then a newer upload holds it (the keeper saw an older state),
/// and it is left alone.
pub fn decide_upload_expiry(
    current: Option<&Image>,
    id: &Uuid,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Image> {
    let image = current
        .filter(|i| i.status != DELETED)
        .ok_or_else(|| not_found(id))?;
    if image.status == SAVING && !upload_lease_expired(image, now_ms, lease_ms) {
        return Err(Refusal::Conflict(format!(
            "The upload of image {id} still holds its lease."
        )));
    }
    let mut next = step(image, SAVING, QUEUED, now_ms)?;
    next.size = 0;
    next.checksum.clear();
    next.os_hash_value.clear();
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_owned()).collect()
    }

    fn image(owner: &str, visibility: &str) -> Image {
        Image {
            id: Uuid::from_u128(1),
            name: "img".into(),
            status: QUEUED.into(),
            size: 0,
            min_disk: 0,
            min_ram: 0,
            disk_format: String::new(),
            container_format: String::new(),
            properties: Default::default(),
            owner: owner.into(),
            checksum: String::new(),
            visibility: visibility.into(),
            created_at_ms: 1,
            protected: false,
            tags: Vec::new(),
            os_hash_value: String::new(),
            updated_at_ms: 1,
            members: Vec::new(),
        }
    }

    fn op(verb: PatchVerb, attribute: &str, value: Option<Value>) -> PatchOp {
        PatchOp {
            verb,
            attribute: attribute.into(),
            value,
        }
    }

    fn data() -> ImageData {
        ImageData {
            image_id: Uuid::from_u128(1),
            size: 3,
            checksum: "a".repeat(32),
            os_hash_value: "b".repeat(128),
        }
    }

    /// Glance's defaults, action by action, for an image of project p1
    /// that is private, then public.
    #[test]
    fn policy_is_glances_default() {
        use Action::*;
        let admin = roles(&["admin"]);
        let member = roles(&["member"]);
        let reader = roles(&["reader"]);
        let callers = [
            (
                "admin",
                Caller {
                    project_id: "ops",
                    roles: &admin,
                },
            ),
            (
                "member",
                Caller {
                    project_id: "p1",
                    roles: &member,
                },
            ),
            (
                "reader",
                Caller {
                    project_id: "p1",
                    roles: &reader,
                },
            ),
            (
                "other",
                Caller {
                    project_id: "p2",
                    roles: &member,
                },
            ),
        ];
        // (action, visibility, [admin, member, reader, other member])
        let table = [
            (GetImages, "private", [true, true, true, true]),
            (GetImage, "private", [true, true, true, false]),
            (GetImage, "public", [true, true, true, true]),
            (ModifyImage, "private", [true, true, false, false]),
            (ModifyImage, "public", [true, true, false, false]),
            (DeleteImage, "private", [true, true, false, false]),
            (UploadImage, "private", [true, true, false, false]),
            (DownloadImage, "private", [true, true, false, false]),
            (DownloadImage, "public", [true, true, false, true]),
            (PublicizeImage, "private", [true, false, false, false]),
            (CommunitizeImage, "private", [true, true, false, false]),
        ];
        for (action, visibility, expected) in table {
            let img = image("p1", visibility);
            for ((who, caller), want) in callers.iter().zip(expected) {
                assert_eq!(
                    allowed(action, caller, Some(&img)),
                    want,
                    "{} on a {visibility} image by {who}",
                    action.name()
                );
            }
        }
        // Creating: one's own project's image, members and up.
        let expected = [true, true, false, true];
        for ((who, caller), want) in callers.iter().zip(expected) {
            assert_eq!(allowed(AddImage, caller, None), want, "add_image by {who}");
        }
    }

    #[test]
    fn a_patch_is_decided_on_the_current_image() {
        let member = roles(&["member"]);
        let caller = Caller {
            project_id: "p1",
            roles: &member,
        };
        let mut current = image("p1", "private");
        current.properties.insert("a".into(), "1".into());
        let id = current.id;
        // Two clients each add their own property to what they saw; both
        // survive because each is applied to the image as it then is.
        let first = [op(PatchVerb::Add, "b", Some(json!("2")))];
        let second = [op(PatchVerb::Add, "c", Some(json!("3")))];
        let after_first = decide_patch(Some(&current), &id, &first, &caller, 5).unwrap();
        let after_both = decide_patch(Some(&after_first), &id, &second, &caller, 6).unwrap();
        assert_eq!(after_both.properties.len(), 3);
        assert_eq!(after_both.updated_at_ms, 6);

        let replace_missing = [op(PatchVerb::Replace, "zz", Some(json!("x")))];
        assert_eq!(
            decide_patch(Some(&current), &id, &replace_missing, &caller, 5)
                .unwrap_err()
                .kind(),
            RejectionKind::Conflict
        );
        let remove_core = [op(PatchVerb::Remove, "name", None)];
        assert_eq!(
            decide_patch(Some(&current), &id, &remove_core, &caller, 5)
                .unwrap_err()
                .kind(),
            RejectionKind::Forbidden
        );
        // All or nothing: a bad op after a good one changes nothing.
        let mixed = [
            op(PatchVerb::Add, "d", Some(json!("4"))),
            op(PatchVerb::Replace, "status", Some(json!("active"))),
        ];
        assert_eq!(
            decide_patch(Some(&current), &id, &mixed, &caller, 5)
                .unwrap_err()
                .kind(),
            RejectionKind::Forbidden
        );
        // Nothing changed: updated_at stays.
        let same = [op(PatchVerb::Replace, "a", Some(json!("1")))];
        assert_eq!(
            decide_patch(Some(&current), &id, &same, &caller, 9).unwrap(),
            current
        );
    }

    #[test]
    fn a_patch_never_touches_status_or_data() {
        let member = roles(&["member"]);
        let caller = Caller {
            project_id: "p1",
            roles: &member,
        };
        let mut active = image("p1", "private");
        active.status = ACTIVE.into();
        active.checksum = "c".repeat(32);
        active.size = 3;
        for key in ["status", "checksum", "size", "os_hash_value", "owner", "id"] {
            let ops = [op(PatchVerb::Replace, key, Some(json!("x")))];
            assert_eq!(
                decide_patch(Some(&active), &active.id, &ops, &caller, 2)
                    .unwrap_err()
                    .kind(),
                RejectionKind::Forbidden,
                "{key}"
            );
        }
        // Formats describe the data: fixed once there is any.
        let ops = [op(PatchVerb::Replace, "disk_format", Some(json!("raw")))];
        assert_eq!(
            decide_patch(Some(&active), &active.id, &ops, &caller, 2)
                .unwrap_err()
                .message(),
            "Attribute disk_format can be only replaced for a queued image."
        );
        let ops = [op(PatchVerb::Add, "k", Some(json!("v")))];
        let next = decide_patch(Some(&active), &active.id, &ops, &caller, 2).unwrap();
        assert_eq!(
            (next.status.as_str(), next.size, &next.checksum),
            (ACTIVE, 3, &active.checksum)
        );
    }

    #[test]
    fn bounds_are_glances() {
        let member = roles(&["member"]);
        let caller = Caller {
            project_id: "p1",
            roles: &member,
        };
        let img = image("p1", "private");
        let id = img.id;
        let refused = |ops: &[PatchOp]| {
            decide_patch(Some(&img), &id, ops, &caller, 2)
                .err()
                .map(|e| e.kind())
        };
        let add = |k: &str, v: Value| op(PatchVerb::Add, k, Some(v));
        assert_eq!(refused(&[add("min_disk", json!(MAX_DB_INT))]), None);
        assert_eq!(
            refused(&[add("min_disk", json!(MAX_DB_INT + 1))]),
            Some(RejectionKind::Invalid)
        );
        assert_eq!(
            refused(&[add("min_ram", json!(1u64 << 40))]),
            Some(RejectionKind::Invalid)
        );
        assert_eq!(
            refused(&[add("min_ram", json!(-1))]),
            Some(RejectionKind::Invalid)
        );
        assert_eq!(
            refused(&[add("min_ram", json!(1.5))]),
            Some(RejectionKind::Invalid)
        );
        assert_eq!(refused(&[add("name", json!("n".repeat(255)))]), None);
        assert_eq!(
            refused(&[add("name", json!("n".repeat(256)))]),
            Some(RejectionKind::Invalid)
        );
        assert_eq!(
            refused(&[add(&"k".repeat(256), json!("v"))]),
            Some(RejectionKind::Invalid)
        );
        assert_eq!(
            refused(&[add("k", json!("v".repeat(65_536)))]),
            Some(RejectionKind::Invalid)
        );
        let tags = |n: usize| json!((0..n).map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(refused(&[add("tags", tags(128))]), None);
        assert_eq!(
            refused(&[add("tags", tags(129))]),
            Some(RejectionKind::OverLimit)
        );
        assert_eq!(
            refused(&[add("tags", json!(["t".repeat(256)]))]),
            Some(RejectionKind::Invalid)
        );
        let props = |n: usize| -> Vec<PatchOp> {
            (0..n).map(|i| add(&format!("p{i}"), json!("v"))).collect()
        };
        assert_eq!(refused(&props(128)), None);
        assert_eq!(refused(&props(129)), Some(RejectionKind::OverLimit));

        let mut big = image("p1", "private");
        big.min_disk = 1 << 40;
        assert_eq!(
            check_bounds(&big).unwrap_err().kind(),
            RejectionKind::Invalid
        );
        big.min_disk = 0;
        big.size = IMAGE_SIZE_CAP + 1;
        assert_eq!(
            check_bounds(&big).unwrap_err().kind(),
            RejectionKind::OverLimit
        );
    }

    #[test]
    fn an_upload_is_one_way_and_sets_the_data_once() {
        let member = roles(&["member"]);
        let caller = Caller {
            project_id: "p1",
            roles: &member,
        };
        let queued = image("p1", "private");
        let id = queued.id;
        let saving = decide_upload_start(Some(&queued), &id, &caller, 2).unwrap();
        assert_eq!(saving.status, SAVING);
        // A second upload while the first is saving is refused.
        assert_eq!(
            decide_upload_start(Some(&saving), &id, &caller, 3)
                .unwrap_err()
                .message(),
            "Image status transition from saving to saving is not allowed"
        );
        let active = decide_upload_finish(Some(&saving), &data(), &caller, 4).unwrap();
        assert_eq!((active.status.as_str(), active.size), (ACTIVE, data().size));
        assert_eq!(active.checksum, data().checksum);
        assert_eq!(
            decide_upload_start(Some(&active), &id, &caller, 5)
                .unwrap_err()
                .message(),
            "Image status transition from active to saving is not allowed"
        );
        assert_eq!(
            decide_upload_finish(Some(&active), &data(), &caller, 5)
                .unwrap_err()
                .kind(),
            RejectionKind::Conflict
        );
        assert_eq!(
            decide_upload_abort(Some(&active), &id, &caller, 5)
                .unwrap_err()
                .kind(),
            RejectionKind::Conflict
        );
        // A failed upload goes back to queued and may be retried.
        let back = decide_upload_abort(Some(&saving), &id, &caller, 5).unwrap();
        assert_eq!(back.status, QUEUED);
        assert!(decide_upload_start(Some(&back), &id, &caller, 6).is_ok());
        // Deleted during the upload: Glance's 410.
        let deleted = decide_delete(Some(&saving), &id, &caller).unwrap();
        assert_eq!(
            decide_upload_finish(Some(&deleted), &data(), &caller, 7)
                .unwrap_err()
                .kind(),
            RejectionKind::Gone
        );
        // Beyond the size cap.
        let mut huge = data();
        huge.size = IMAGE_SIZE_CAP + 1;
        assert_eq!(
            decide_upload_finish(Some(&saving), &huge, &caller, 7)
                .unwrap_err()
                .kind(),
            RejectionKind::OverLimit
        );
        // Readers do not upload.
        let reader = roles(&["reader"]);
        let r = Caller {
            project_id: "p1",
            roles: &reader,
        };
        assert_eq!(
            decide_upload_start(Some(&queued), &id, &r, 2)
                .unwrap_err()
                .kind(),
            RejectionKind::Forbidden
        );
    }

    #[test]
    fn patch_syntax() {
        assert_eq!(attribute("/name").unwrap(), "name");
        assert_eq!(attribute("/a~1b").unwrap(), "a/b");
        assert!(attribute("name").is_err());
        assert!(attribute("/a/b").is_err());
        let ops = parse_patch(&json!([
            {"op": "add", "path": "/k", "value": "v"},
            {"op": "remove", "path": "/k"},
        ]))
        .unwrap();
        assert_eq!(ops[0].value, Some(json!("v")));
        assert_eq!(ops[1].verb, PatchVerb::Remove);
        for bad in [
            json!({}),
            json!([1]),
            json!([{"op": "move", "path": "/a", "from": "/b"}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"path": "/a", "value": 1}]),
        ] {
            assert_eq!(
                parse_patch(&bad).unwrap_err().kind(),
                RejectionKind::Invalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn an_upload_past_its_lease_goes_back_to_queued_and_a_newer_one_is_left_alone() {
        let caller = Caller {
            project_id: "demo",
            roles: &roles(&["member"]),
        };
        let queued = image("demo", "private");
        let id = queued.id;
        let lease = 1_000;
        let saving = decide_upload_start(Some(&queued), &id, &caller, 10).unwrap();
        assert!(!upload_lease_expired(&saving, 10 + lease - 1, lease));
        assert!(upload_lease_expired(&saving, 10 + lease, lease));

        // Within the lease: refused, whoever asks.
        assert!(matches!(
            decide_upload_expiry(Some(&saving), &id, 10 + lease - 1, lease),
            Err(Refusal::Conflict(_))
        ));
        // Past it: queued, with no data, ready for another upload.
        let requeued = decide_upload_expiry(Some(&saving), &id, 10 + lease, lease).unwrap();
        assert_eq!(requeued.status, QUEUED);
        assert_eq!((requeued.size, requeued.checksum.as_str()), (0, ""));
        assert_eq!(requeued.updated_at_ms, 10 + lease);

        // A second keeper's abort of the same old upload, decided after a
        // new upload started, leaves the new one alone.
        let again = decide_upload_start(Some(&requeued), &id, &caller, 10 + lease + 5).unwrap();
        assert!(decide_upload_expiry(Some(&again), &id, 10 + lease + 6, lease).is_err());
        // Neither active, queued nor deleted images are the keeper's.
        assert!(decide_upload_expiry(Some(&queued), &id, i64::MAX, lease).is_err());
        let deleted = decide_delete(Some(&saving), &id, &caller).unwrap();
        assert!(matches!(
            decide_upload_expiry(Some(&deleted), &id, i64::MAX, lease),
            Err(Refusal::NotFound(_))
        ));
        assert!(decide_upload_expiry(None, &id, i64::MAX, lease).is_err());

        assert!(is_lease_keeper(
            LEASE_KEEPER,
            "service",
            &roles(&["service"])
        ));
        assert!(!is_lease_keeper(LEASE_KEEPER, "demo", &roles(&["admin"])));
        assert!(!is_lease_keeper("someone", "service", &roles(&["service"])));
    }
}
