//! Conversions between the generated protobuf types (`pb`) and the domain
//! types: the only place that touches `pb`.
//!
//! Each message converts with `From<domain> for pb::…` and `TryFrom<pb::…>
//! for domain`: the wire is untrusted, so a record that does not hold
//! together is a [`DecodeError`] naming the field (the dead-letter reason),
//! never a panic. Most conversions are field lists (`message!` for structs,
//! `records!` for the record types of every topic): a field converts by its
//! type's [`Wire`] impl, or as marked:
//! - `nonempty`: required; empty on the wire is `Missing(field)`;
//! - `if set_x`: an `Option` given only when the wire flag `set_x` is on
//!   (proto3 cannot tell an absent string from a cleared one);
//! - `with m(a, b)`: one domain field spread over the wire fields `a`, `b`
//!   by `m::put` and `m::take`.
//!
//! A record keeps decoding under every name it was written under: a renamed
//! type lists its old names (`| "Old"`).

use std::collections::BTreeMap;

use prost::Message;
use uuid::Uuid;

use crate::actions::ServerAction;
use crate::billing::BillingEvent;
use crate::console::ConsoleToken;
use crate::envelope::{Actor, DecodeError, Envelope, Meta, SCHEMA_VERSION};
use crate::events::{
    CatalogEvent, ComputeCommand, ComputeFact, DeadLetter, Event, FlavorUpdate, HostAggregate,
    HostEvent, HostRegistered, InstanceCreated, InstanceEvent, Intent, Keypair, SchedulerEvent,
    SelectHostsRequested, ServerCreateRequested, ServerGroup, ServerGroupPolicy, ServerGroupSpec,
    ServiceChange, ServiceStatus, SpawnInstance,
};
use crate::identity::{
    ApplicationCredential, IdentityDomain, IdentityGroup, IdentityProject, IdentityRole,
    IdentityUser, RoleGrant,
};
use crate::image::{ImageChange, ImageData, ImagePatch, PatchOp, PatchVerb};
use crate::migration::{
    Migration, MigrationCommand, MigrationFact, MigrationProgress, MigrationStatus, MigrationType,
    RebuildSpec, ServerMigrationRequested, ServerRebuildRequested,
};
use crate::pb;
use crate::state::{PowerState, TaskState, VmState};
use crate::values::{
    AccessChange, AccessConfig, Fault, Flavor, HostUsage, Image, ImageMember, Resources,
};

pub(crate) type R<T> = Result<T, DecodeError>;

/// How a domain value travels in a protobuf field of type `W`.
pub(crate) trait Wire<W>: Sized {
    fn put(self) -> W;
    /// The domain value of a wire field; `field` names it in errors.
    fn take(w: W, field: &'static str) -> R<Self>;
}

/// The same type on both sides: numbers, strings, maps of them, `optional`.
impl<T> Wire<T> for T {
    fn put(self) -> T {
        self
    }
    fn take(w: T, _: &'static str) -> R<T> {
        Ok(w)
    }
}

fn invalid(field: &'static str, message: impl ToString) -> DecodeError {
    DecodeError::Invalid {
        field,
        message: message.to_string(),
    }
}

fn nonempty<T: Default + PartialEq>(field: &'static str, v: T) -> R<T> {
    if v == T::default() {
        Err(DecodeError::Missing(field))
    } else {
        Ok(v)
    }
}

impl Wire<String> for Uuid {
    fn put(self) -> String {
        self.to_string()
    }
    fn take(s: String, field: &'static str) -> R<Self> {
        Uuid::parse_str(&s).map_err(|e| invalid(field, e))
    }
}

/// A proto3 string is never absent: empty stands for `None`.
impl Wire<String> for Option<String> {
    fn put(self) -> String {
        self.unwrap_or_default()
    }
    fn take(s: String, _: &'static str) -> R<Self> {
        Ok((!s.is_empty()).then_some(s))
    }
}

impl Wire<String> for Option<Uuid> {
    fn put(self) -> String {
        self.map(|u| u.to_string()).unwrap_or_default()
    }
    fn take(s: String, field: &'static str) -> R<Self> {
        (!s.is_empty()).then(|| Uuid::take(s, field)).transpose()
    }
}

impl Wire<Vec<String>> for Vec<Uuid> {
    fn put(self) -> Vec<String> {
        self.iter().map(Uuid::to_string).collect()
    }
    fn take(v: Vec<String>, field: &'static str) -> R<Self> {
        v.into_iter().map(|s| Uuid::take(s, field)).collect()
    }
}

/// Scheduler hints: every value a list of strings.
impl Wire<BTreeMap<String, pb::HintValues>> for BTreeMap<String, Vec<String>> {
    fn put(self) -> BTreeMap<String, pb::HintValues> {
        let hint = |(k, values)| (k, pb::HintValues { values });
        self.into_iter().map(hint).collect()
    }
    fn take(h: BTreeMap<String, pb::HintValues>, _: &'static str) -> R<Self> {
        Ok(h.into_iter().map(|(k, v)| (k, v.values)).collect())
    }
}

/// A list that may be absent (`trusted_image_certificates`): an absent
/// message is `None`, a present one the list, even empty.
impl Wire<Option<pb::HintValues>> for Option<Vec<String>> {
    fn put(self) -> Option<pb::HintValues> {
        self.map(|values| pb::HintValues { values })
    }
    fn take(w: Option<pb::HintValues>, _: &'static str) -> R<Self> {
        Ok(w.map(|h| h.values))
    }
}

/// Nova's integer; one it does not know is an error naming the field (see
/// [`PowerState`]).
impl Wire<i32> for PowerState {
    fn put(self) -> i32 {
        self.code()
    }
    fn take(code: i32, field: &'static str) -> R<Self> {
        let unknown = || invalid(field, format!("unknown power_state {code}"));
        PowerState::from_code(code).ok_or_else(unknown)
    }
}

/// Usage a record does not carry is none.
impl Wire<Option<pb::HostUsage>> for HostUsage {
    fn put(self) -> Option<pb::HostUsage> {
        Some(self.into())
    }
    fn take(u: Option<pb::HostUsage>, _: &'static str) -> R<Self> {
        Ok(u.map(TryInto::try_into).transpose()?.unwrap_or_default())
    }
}

/// States and kinds written as Nova spells them.
macro_rules! spelled {
    ($($t:ty: $what:literal),* $(,)?) => {$(
        impl Wire<String> for $t {
            fn put(self) -> String {
                self.as_str().to_owned()
            }
            fn take(s: String, field: &'static str) -> R<Self> {
                let unknown = || invalid(field, format!(concat!("unknown ", $what, " {:?}"), s));
                <$t>::parse(&s).ok_or_else(unknown)
            }
        }
    )*};
}

spelled!(
    VmState: "vm_state",
    TaskState: "task_state",
    MigrationType: "migration type",
    MigrationStatus: "migration status",
    ServerGroupPolicy: "policy",
);

/// A message field: the domain value when required (absent is
/// `Missing(field)`), an `Option` when not, boxed in record variants.
macro_rules! nested {
    ($($d:ty => $p:ty),* $(,)?) => {$(
        impl Wire<Option<$p>> for $d {
            fn put(self) -> Option<$p> {
                Some(self.into())
            }
            fn take(w: Option<$p>, field: &'static str) -> R<Self> {
                w.ok_or(DecodeError::Missing(field))?.try_into()
            }
        }
        impl Wire<Option<$p>> for Option<$d> {
            fn put(self) -> Option<$p> {
                self.map(Into::into)
            }
            fn take(w: Option<$p>, _: &'static str) -> R<Self> {
                w.map(TryInto::try_into).transpose()
            }
        }
        impl Wire<Option<$p>> for Box<$d> {
            fn put(self) -> Option<$p> {
                Some((*self).into())
            }
            fn take(w: Option<$p>, field: &'static str) -> R<Self> {
                <$d>::take(w, field).map(Box::new)
            }
        }
    )*};
}

nested!(
    Flavor => pb::Flavor,
    Image => pb::Image,
    Resources => pb::Resources,
    Fault => pb::Fault,
    ServerAction => pb::ServerAction,
    ServerGroup => pb::ServerGroup,
    ServerGroupSpec => pb::ServerGroupSpec,
    HostAggregate => pb::HostAggregate,
    Keypair => pb::Keypair,
    ServiceStatus => pb::ServiceStatus,
);

/// Writes domain field `$f` (a local) into wire message `$w`, as marked.
macro_rules! put {
    ($w:ident, $f:ident $(, nonempty)?) => {
        $w.$f = Wire::put($f);
    };
    ($w:ident, $f:ident, if $set:ident) => {
        $w.$set = $f.is_some();
        $w.$f = Wire::put($f.unwrap_or_default());
    };
    ($w:ident, $f:ident, with $m:ident ($($x:ident),*)) => {
        ($($w.$x),*) = $m::put($f);
    };
}

/// Reads domain field `$f` out of wire message `$p`, as marked; errors name
/// the field after the prefix `$pre`.
macro_rules! take {
    ($p:ident, $pre:literal, $f:ident) => {
        Wire::take($p.$f, concat!($pre, stringify!($f)))?
    };
    ($p:ident, $pre:literal, $f:ident, nonempty) => {
        nonempty(concat!($pre, stringify!($f)), $p.$f)?
    };
    ($p:ident, $pre:literal, $f:ident, if $set:ident) => {
        match $p.$set {
            true => Some(Wire::take($p.$f, concat!($pre, stringify!($f)))?),
            false => None,
        }
    };
    ($p:ident, $pre:literal, $f:ident, with $m:ident ($($x:ident),*)) => {
        $m::take($($p.$x),*)?
    };
}

/// `From<$d> for $p` and `TryFrom<$p> for $d` over the fields both have,
/// then `$fix` on the decoded value. Destructuring `$d` whole makes a
/// field added to it fail to compile until it is listed here.
macro_rules! message {
    ($($d:ident = $p:ty, $pre:literal {
        $($f:ident $(: $k:ident $($a:ident)? $(($($x:ident),*))?)?),* $(,)?
    } $(then $fix:path)?;)*) => {$(
        impl From<$d> for $p {
            #[allow(clippy::field_reassign_with_default)]
            fn from(d: $d) -> Self {
                let $d { $($f),* } = d;
                let mut w = <$p>::default();
                $(put!(w, $f $(, $k $($a)? $(($($x),*))?)?);)*
                w
            }
        }
        impl TryFrom<$p> for $d {
            type Error = DecodeError;
            fn try_from(p: $p) -> R<Self> {
                let d = $d { $($f: take!(p, $pre, $f $(, $k $($a)? $(($($x),*))?)?)),* };
                $(let d = $fix(d);)?
                Ok(d)
            }
        }
    )*};
}

message! {
    IdentityDomain = pb::IdentityDomain, "domain." { id: nonempty, name: nonempty, description, enabled };
    IdentityProject = pb::IdentityProject, "project." {
        id: nonempty, name: nonempty, domain_id: nonempty, description, enabled, tags,
    };
    IdentityUser = pb::IdentityUser, "user." {
        id: nonempty, name: nonempty, domain_id: nonempty, description, enabled,
        default_project_id, email, password_hash, token_epoch,
    };
    IdentityGroup = pb::IdentityGroup, "group." { id: nonempty, name: nonempty, domain_id: nonempty, description };
    IdentityRole = pb::IdentityRole, "role." { id: nonempty, name: nonempty, description };
    RoleGrant = pb::RoleGrant, "grant." {
        role_id: nonempty, actor_id: nonempty, actor_is_group, target_id: nonempty, target_is_domain,
        inherited,
    };
    ApplicationCredential = pb::ApplicationCredential, "application_credential." {
        id: nonempty, name: nonempty, description, user_id: nonempty, project_id: nonempty,
        secret_hash: nonempty, role_ids, expires_at_ms, unrestricted,
    };
    Resources = pb::Resources, "" { vcpus, memory_mb, disk_gb };
    HostUsage = pb::HostUsage, "" { vcpus_used, memory_mb_used, disk_gb_used, instances, generation };
    Fault = pb::Fault, "" { code, message, details, created_at_ms };
    Flavor = pb::Flavor, "flavor." {
        id: nonempty, name: nonempty, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, rxtx_factor,
        is_public, extra_specs, description,
    };
    Image = pb::Image, "image." {
        id, name, status, size, min_disk, min_ram, disk_format, container_format, properties,
        owner, checksum, visibility, created_at_ms, protected, tags, os_hash_value, updated_at_ms,
        members,
    };
    ImageMember = pb::ImageMember, "member." {
        member_id: nonempty, status: nonempty, created_at_ms, updated_at_ms,
    };
    ServerGroupSpec = pb::ServerGroupSpec, "server_group." {
        id, policy, max_server_per_host, hosts, members,
    };
    ServerGroup = pb::ServerGroup, "group." {
        id, name, project_id, user_id, policy, max_server_per_host, created_at_ms,
    };
    HostAggregate = pb::HostAggregate, "aggregate." {
        id, uuid, name, hosts, metadata, created_at_ms, updated_at_ms,
    };
    Keypair = pb::Keypair, "keypair." {
        name: nonempty, user_id: nonempty, project_id, public_key, fingerprint, key_type,
        created_at_ms, id,
    };
    ServiceStatus = pb::ServiceStatus, "status." {
        host: nonempty, disabled, disabled_reason, forced_down,
    };
    DeadLetter = pb::DeadLetter, "" { source_topic, partition, offset, consumer, error, key, value };
    ServerCreateRequested = pb::ServerCreateRequested, "" {
        instance_id, name, flavor, image, metadata, availability_zone, key_name, user_data,
        description, tags, reservation_id, launch_index, scheduler_hints, min_count, max_count,
        access, hostname, trusted_image_certificates, requested_host,
    } then at_least_one;
    InstanceCreated = pb::InstanceCreated, "" {
        name, project_id: nonempty, user_id, flavor, image, metadata, availability_zone, key_name,
        user_data, description, tags, reservation_id, launch_index, created_at_ms,
        scheduler_hints, access, hostname, trusted_image_certificates, requested_host,
    };
    ImagePatch = pb::ImagePatchRequested, "" { image_id, ops };
    ImageData = pb::ImageUploadFinishRequested, "" {
        image_id, size, checksum: nonempty, os_hash_value: nonempty,
    };
    FlavorUpdate = pb::FlavorUpdateRequested, "" {
        flavor_id: nonempty, extra_specs_set, extra_specs_unset, description: if set_description,
    };
    ServiceChange = pb::ServiceChangeRequested, "" {
        host: nonempty, disabled, disabled_reason: if change_disabled_reason, forced_down, seen,
    };
    SelectHostsRequested = pb::SelectHostsRequested, "" {
        request_id, instance_id, project_id, resources, image_properties, extra_specs,
        availability_zone, ignore_hosts, num_alternates, scheduler_hints, server_group, image_id,
        flavor_name, requested_host,
    };
    SpawnInstance = pb::SpawnInstance, "" {
        instance_id, host: nonempty, attempt, project_id, name, flavor, image,
    };
    HostRegistered = pb::HostRegistered, "" {
        host: nonempty, capacity, usage, cpu_arch, hypervisor_type, hypervisor_version,
        availability_zone, capabilities, driver,
    };
    Migration = pb::MigrationRecord, "" {
        id, uuid, migration_type, status, source_compute, dest_compute, old_flavor, new_flavor,
        created_at_ms, updated_at_ms, alternates, attempt, original_vm_state,
        original_power_state, requested_host, project_id,
        user_id, stop_at_destination,
    };
    MigrationProgress = pb::MigrationProgress, "" {
        migration_id, power_state, host, alternates, attempt, fault,
    };
    MigrationCommand = pb::MigrationCommand, "" {
        instance_id, migration_id, host, source_host, dest_host, attempt, flavor, image, name,
        project_id, power_on,
    };
    MigrationFact = pb::MigrationFact, "" {
        instance_id, migration_id, host, attempt, power_state, step, reason, usage,
    };
    ServerMigrationRequested = pb::ServerMigrationRequested, "" {
        instance_id, migration_type, flavor, host, source_host_down, auto_disk_config,
        stop_at_destination,
    };
    ServerRebuildRequested = pb::ServerRebuildRequested, "" {
        instance_id, image, name, metadata: if replace_metadata, key_name: if set_key_name,
        user_data: if set_user_data, description: if set_description, access,
        trusted_image_certificates: if set_trusted_image_certificates, hostname,
    };
    RebuildSpec = pb::RebuildStarted, "" {
        image, name, metadata, key_name, user_data, description, access,
        trusted_image_certificates, hostname,
    };
    ConsoleToken = pb::ConsoleTokenIssued, "" {
        instance_id, token_hash: nonempty, console_type: nonempty, host: nonempty, address, port,
        expires_at_ms,
    };
}

/// An access address on the wire: empty is `None`, anything else must
/// parse (a record is validated where it crosses the process boundary).
fn ip<A: std::str::FromStr>(s: String, field: &'static str) -> R<Option<A>>
where
    A::Err: std::fmt::Display,
{
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e| invalid(field, e))
}

fn ip_put<A: ToString>(a: Option<A>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

/// The state: absent (records before it) is no addresses, `MANUAL`.
impl Wire<Option<pb::AccessConfig>> for AccessConfig {
    fn put(self) -> Option<pb::AccessConfig> {
        Some(pb::AccessConfig {
            access_ip_v4: ip_put(self.access_ip_v4),
            access_ip_v6: ip_put(self.access_ip_v6),
            auto_disk_config: Some(self.auto_disk_config),
        })
    }
    fn take(w: Option<pb::AccessConfig>, _: &'static str) -> R<Self> {
        let change = AccessChange::take(w, "access")?;
        Ok(change.applied_to(AccessConfig::default()))
    }
}

/// A change: absent or empty fields leave the old value.
impl Wire<Option<pb::AccessConfig>> for AccessChange {
    fn put(self) -> Option<pb::AccessConfig> {
        (!self.is_empty()).then(|| pb::AccessConfig {
            access_ip_v4: ip_put(self.access_ip_v4),
            access_ip_v6: ip_put(self.access_ip_v6),
            auto_disk_config: self.auto_disk_config,
        })
    }
    fn take(w: Option<pb::AccessConfig>, _: &'static str) -> R<Self> {
        let Some(w) = w else {
            return Ok(AccessChange::default());
        };
        Ok(AccessChange {
            access_ip_v4: ip(w.access_ip_v4, "access.access_ip_v4")?,
            access_ip_v6: ip(w.access_ip_v6, "access.access_ip_v6")?,
            auto_disk_config: w.auto_disk_config,
        })
    }
}

/// A state after a change; absent in records written before it.
impl Wire<Option<pb::AccessConfig>> for Option<AccessConfig> {
    fn put(self) -> Option<pb::AccessConfig> {
        self.and_then(AccessConfig::put)
    }
    fn take(w: Option<pb::AccessConfig>, field: &'static str) -> R<Self> {
        w.map(|w| AccessConfig::take(Some(w), field)).transpose()
    }
}

/// A create written before `min_count` and `max_count` existed asked for
/// one server.
fn at_least_one(mut r: ServerCreateRequested) -> ServerCreateRequested {
    r.min_count = r.min_count.max(1);
    r.max_count = r.max_count.max(r.min_count);
    r
}

impl From<ServerAction> for pb::ServerAction {
    fn from(a: ServerAction) -> Self {
        let kind = a.name().to_owned();
        match a {
            ServerAction::Reboot { hard } => pb::ServerAction {
                kind,
                hard,
                ..Default::default()
            },
            ServerAction::Lock { reason } => pb::ServerAction {
                kind,
                locked_reason: reason,
                ..Default::default()
            },
            ServerAction::Shelve { image_id } | ServerAction::Rescue { image_id } => {
                pb::ServerAction {
                    kind,
                    image_id: image_id.map(|i| i.to_string()).unwrap_or_default(),
                    ..Default::default()
                }
            }
            ServerAction::CreateImage {
                image_id,
                name,
                metadata,
            } => pb::ServerAction {
                kind,
                image_id: image_id.map(|i| i.to_string()).unwrap_or_default(),
                name,
                metadata: metadata.into_iter().collect(),
                ..Default::default()
            },
            ServerAction::ResetState { state } => pb::ServerAction {
                kind,
                state: state.as_str().to_owned(),
                ..Default::default()
            },
            ServerAction::Unshelve {
                availability_zone,
                host,
            } => pb::ServerAction {
                kind,
                set_availability_zone: availability_zone.is_some(),
                availability_zone: availability_zone.flatten(),
                host: host.unwrap_or_default(),
                ..Default::default()
            },
            _ => pb::ServerAction {
                kind,
                ..Default::default()
            },
        }
    }
}

impl TryFrom<pb::ServerAction> for ServerAction {
    type Error = DecodeError;
    fn try_from(a: pb::ServerAction) -> R<Self> {
        Ok(match a.kind.as_str() {
            "reboot" => ServerAction::Reboot { hard: a.hard },
            "stop" => ServerAction::Stop,
            "start" => ServerAction::Start,
            "pause" => ServerAction::Pause,
            "unpause" => ServerAction::Unpause,
            "suspend" => ServerAction::Suspend,
            "resume" => ServerAction::Resume,
            "lock" => ServerAction::Lock {
                reason: a.locked_reason,
            },
            "unlock" => ServerAction::Unlock,
            "shelve" => ServerAction::Shelve {
                image_id: optional_uuid(&a.image_id, "action.image_id")?,
            },
            "shelveOffload" => ServerAction::ShelveOffload,
            "unshelve" => ServerAction::Unshelve {
                availability_zone: a.set_availability_zone.then_some(a.availability_zone),
                host: (!a.host.is_empty()).then_some(a.host),
            },
            "rescue" => ServerAction::Rescue {
                image_id: optional_uuid(&a.image_id, "action.image_id")?,
            },
            "unrescue" => ServerAction::Unrescue,
            "createImage" => ServerAction::CreateImage {
                image_id: optional_uuid(&a.image_id, "action.image_id")?,
                name: a.name,
                metadata: a.metadata.into_iter().collect(),
            },
            "trigger_crash_dump" => ServerAction::TriggerCrashDump,
            "resetState" => ServerAction::ResetState {
                state: VmState::parse(&a.state)
                    .ok_or_else(|| invalid("action.state", format!("{:?}", a.state)))?,
            },
            "delete" => ServerAction::SoftDelete,
            "restore" => ServerAction::Restore,
            other => {
                let message = format!("unknown server action {other:?}");
                return Err(invalid("action.kind", message));
            }
        })
    }
}

/// An id that may be absent (empty on the wire).
fn optional_uuid(s: &str, field: &'static str) -> R<Option<Uuid>> {
    if s.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(s).map(Some).map_err(|e| invalid(field, e))
}

impl Wire<Vec<pb::ImageMember>> for Vec<ImageMember> {
    fn put(self) -> Vec<pb::ImageMember> {
        self.into_iter().map(pb::ImageMember::from).collect()
    }
    fn take(members: Vec<pb::ImageMember>, _: &'static str) -> R<Self> {
        members.into_iter().map(ImageMember::try_from).collect()
    }
}

/// An image change: its `op` and the fields that op takes.
mod image_change {
    use super::{ImageChange, R, invalid, nonempty};

    type Wire = (String, String, String, String, u64);

    pub(super) fn put(change: ImageChange) -> Wire {
        let op = change.op().to_owned();
        let none = String::new;
        match change {
            ImageChange::AddMember { member } | ImageChange::RemoveMember { member } => {
                (op, member, none(), none(), 0)
            }
            ImageChange::SetMemberStatus { member, status } => (op, member, status, none(), 0),
            ImageChange::AddTag { tag } | ImageChange::RemoveTag { tag } => {
                (op, none(), none(), tag, 0)
            }
            ImageChange::Staged { size } => (op, none(), none(), none(), size),
            ImageChange::Deactivate
            | ImageChange::Reactivate
            | ImageChange::StageStart
            | ImageChange::StageAbort
            | ImageChange::ImportStart
            | ImageChange::ImportAbort => (op, none(), none(), none(), 0),
        }
    }

    pub(super) fn take(
        op: String,
        member: String,
        status: String,
        tag: String,
        size: u64,
    ) -> R<ImageChange> {
        Ok(match op.as_str() {
            "member-add" => ImageChange::AddMember {
                member: nonempty("member", member)?,
            },
            "member-remove" => ImageChange::RemoveMember {
                member: nonempty("member", member)?,
            },
            "member-status" => ImageChange::SetMemberStatus {
                member: nonempty("member", member)?,
                status: nonempty("status", status)?,
            },
            "tag-add" => ImageChange::AddTag {
                tag: nonempty("tag", tag)?,
            },
            "tag-remove" => ImageChange::RemoveTag {
                tag: nonempty("tag", tag)?,
            },
            "deactivate" => ImageChange::Deactivate,
            "reactivate" => ImageChange::Reactivate,
            "stage-start" => ImageChange::StageStart,
            "staged" => ImageChange::Staged { size },
            "stage-abort" => ImageChange::StageAbort,
            "import-start" => ImageChange::ImportStart,
            "import-abort" => ImageChange::ImportAbort,
            other => return Err(invalid("op", format!("unknown image change {other:?}"))),
        })
    }
}

impl Wire<Vec<pb::ImagePatchOp>> for Vec<PatchOp> {
    fn put(self) -> Vec<pb::ImagePatchOp> {
        let op = |op: PatchOp| pb::ImagePatchOp {
            op: op.verb.as_str().to_owned(),
            attribute: op.attribute,
            value_json: op.value.map(|v| v.to_string()),
        };
        self.into_iter().map(op).collect()
    }
    fn take(ops: Vec<pb::ImagePatchOp>, _: &'static str) -> R<Self> {
        let op = |op: pb::ImagePatchOp| {
            let unknown = || invalid("ops.op", format!("unknown operation {:?}", op.op));
            let verb = PatchVerb::parse(&op.op).ok_or_else(unknown)?;
            let value = op.value_json.map(|v| serde_json::from_str(&v));
            Ok(PatchOp {
                verb,
                attribute: nonempty("ops.attribute", op.attribute)?,
                value: value
                    .transpose()
                    .map_err(|e| invalid("ops.value_json", e))?,
            })
        };
        ops.into_iter().map(op).collect()
    }
}

/// `set_metadata`'s keys: set ones in `set`, removed ones (`None`) listed.
mod aggregate_metadata {
    use std::collections::BTreeMap;

    type Metadata = BTreeMap<String, Option<String>>;

    pub(super) fn put(metadata: Metadata) -> (BTreeMap<String, String>, Vec<String>) {
        let (set, removed): (Metadata, Metadata) =
            metadata.into_iter().partition(|(_, v)| v.is_some());
        let set = set.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        (set, removed.into_keys().collect())
    }
    pub(super) fn take(set: BTreeMap<String, String>, removed: Vec<String>) -> super::R<Metadata> {
        let mut metadata: Metadata = set.into_iter().map(|(k, v)| (k, Some(v))).collect();
        metadata.extend(removed.into_iter().map(|k| (k, None)));
        Ok(metadata)
    }
}

/// A rejection's kind. A record written before `kind` existed has it unset
/// and carries the HTTP status the conductor chose then; those statuses
/// map one to one onto kinds (over-quota verdicts were 403s, so they read
/// as forbidden, which answers the same).
mod rejection {
    use super::{R, invalid, pb};
    use crate::envelope::DecodeError;
    use crate::rejection::RejectionKind;
    use pb::RejectionKind as K;

    pub(super) fn put(kind: RejectionKind) -> (i32, i32, Option<pb::InvalidState>) {
        let k = match kind {
            RejectionKind::Invalid => K::Invalid,
            RejectionKind::Forbidden => K::Forbidden,
            RejectionKind::OverQuota => K::OverQuota,
            RejectionKind::NotFound => K::NotFound,
            RejectionKind::Conflict => K::Conflict,
            RejectionKind::Gone => K::Gone,
            RejectionKind::OverLimit => K::OverLimit,
            RejectionKind::Internal => K::Internal,
            RejectionKind::InvalidState {
                attribute,
                state,
                method,
            } => {
                let s = pb::InvalidState {
                    attribute,
                    state,
                    method,
                };
                return (K::InvalidState.into(), 0, Some(s));
            }
        };
        (k.into(), 0, None)
    }

    pub(super) fn take(
        kind: i32,
        code: i32,
        invalid_state: Option<pb::InvalidState>,
    ) -> R<RejectionKind> {
        let unknown = |_| {
            invalid(
                "intent_rejected.kind",
                format!("unknown rejection kind {kind}"),
            )
        };
        Ok(match K::try_from(kind).map_err(unknown)? {
            K::Unspecified => match code {
                400 => RejectionKind::Invalid,
                403 => RejectionKind::Forbidden,
                404 => RejectionKind::NotFound,
                409 => RejectionKind::Conflict,
                410 => RejectionKind::Gone,
                413 => RejectionKind::OverLimit,
                _ => RejectionKind::Internal,
            },
            K::Invalid => RejectionKind::Invalid,
            K::Forbidden => RejectionKind::Forbidden,
            K::OverQuota => RejectionKind::OverQuota,
            K::NotFound => RejectionKind::NotFound,
            K::Conflict => RejectionKind::Conflict,
            K::InvalidState => {
                let missing = DecodeError::Missing("intent_rejected.invalid_state");
                let s = invalid_state.ok_or(missing)?;
                RejectionKind::InvalidState {
                    attribute: s.attribute,
                    state: s.state,
                    method: s.method,
                }
            }
            K::Gone => RejectionKind::Gone,
            K::OverLimit => RejectionKind::OverLimit,
            K::Internal => RejectionKind::Internal,
        })
    }
}

/// The protobuf message of a record type: its own name unless given.
macro_rules! msg {
    ($v:ident) => {
        pb::$v
    };
    ($v:ident, $m:ident) => {
        pb::$m
    };
}

/// Every record type of every topic, by the shape of its variant:
/// `fields` (a struct variant, its message alike), `wraps` (the message's
/// one field holds the variant's value), `boxes` (the variant boxes a
/// struct converted by `message!`), `units` (no fields). `as M` writes the
/// payload as message `M`. Generates `payload` (whose match is exhaustive,
/// so a new variant fails to compile until it is listed), `record` and
/// `TYPE_NAMES`.
macro_rules! records {
    ($($topic:ident in $ev:ident {
        fields { $($fv:ident {
            $($f:ident $(: $k:ident $($a:ident)? $(($($x:ident),*))?)?),* $(,)?
        } $(as $fm:ident)? $(| $fold:literal)*),* $(,)? }
        wraps { $($wv:ident($wf:ident)),* $(,)? }
        boxes { $($bv:ident $(as $bm:ident)? $(| $bold:literal)*),* $(,)? }
        units { $($uv:ident $(| $uold:literal)*),* $(,)? }
    })*) => {
        /// The record types written today.
        #[cfg(test)]
        pub(crate) const TYPE_NAMES: &[&str] = &[
            $($(stringify!($fv),)* $(stringify!($wv),)* $(stringify!($bv),)* $(stringify!($uv),)*)*
            "DeadLetter",
        ];

        #[allow(clippy::field_reassign_with_default)]
        fn payload(event: Event) -> Vec<u8> {
            match event {
                $(
                    $(Event::$ev($topic::$fv { $($f),* }) => {
                        let mut w = <msg!($fv $(, $fm)?)>::default();
                        $(put!(w, $f $(, $k $($a)? $(($($x),*))?)?);)*
                        w.encode_to_vec()
                    })*
                    $(Event::$ev($topic::$wv($wf)) => pb::$wv { $wf: Wire::put($wf) }.encode_to_vec(),)*
                    $(Event::$ev($topic::$bv(x)) => <msg!($bv $(, $bm)?)>::from(*x).encode_to_vec(),)*
                    $(Event::$ev($topic::$uv) => Vec::new(),)*
                )*
                Event::DeadLetter(d) => pb::DeadLetter::from(*d).encode_to_vec(),
            }
        }

        /// The record of type `t` whose payload is `b`.
        fn record(t: &str, b: &[u8]) -> R<Event> {
            Ok(match t {
                $(
                    $(stringify!($fv) $(| $fold)* => {
                        let p: msg!($fv $(, $fm)?) = parse(t, b)?;
                        $topic::$fv { $($f: take!(p, "", $f $(, $k $($a)? $(($($x),*))?)?)),* }.into()
                    })*
                    $(stringify!($wv) => {
                        let p: pb::$wv = parse(t, b)?;
                        $topic::$wv(take!(p, "", $wf)).into()
                    })*
                    $(stringify!($bv) $(| $bold)* => {
                        let p: msg!($bv $(, $bm)?) = parse(t, b)?;
                        $topic::$bv(Box::new(p.try_into()?)).into()
                    })*
                    $(stringify!($uv) $(| $uold)* => {
                        parse::<()>(t, b)?;
                        $topic::$uv.into()
                    })*
                )*
                "DeadLetter" => Event::DeadLetter(Box::new(parse::<pb::DeadLetter>(t, b)?.try_into()?)),
                other => return Err(DecodeError::UnknownType(other.to_owned())),
            })
        }
    };
}

records! {
    Intent in Intent {
        fields {
            ServerDeleteRequested { instance_id, force },
            ImageDeleteRequested { image_id },
            ImageUploadRequested { image_id },
            ImageUploadAbortRequested { image_id },
            ImageChangeRequested {
                image_id,
                change: with image_change(op, member, status, tag, size),
            },
            ServerGroupDeleteRequested { group_id },
            AggregateUpdateRequested { aggregate_id, name, availability_zone },
            AggregateDeleteRequested { aggregate_id },
            AggregateHostAddRequested { aggregate_id, host: nonempty },
            AggregateHostRemoveRequested { aggregate_id, host: nonempty },
            AggregateMetadataSetRequested {
                aggregate_id,
                metadata: with aggregate_metadata(set, removed),
            },
            ServerActionRequested { instance_id, action },
            ServerUpdateRequested { instance_id, name, description: if set_description, access, hostname },
            ServerMetadataChangeRequested { instance_id, replace_all, set, remove },
            ServerTagsChangeRequested { instance_id, replace_all, add, remove },
            QuotaSetRequested { project_id: nonempty, limits, force },
            QuotaResetRequested { project_id: nonempty },
            QuotaClassSetRequested { class_name: nonempty, limits },
            KeypairDeleteRequested { user_id: nonempty, name: nonempty },
            FlavorDeleteRequested { flavor_id: nonempty },
            FlavorAccessChangeRequested { flavor_id: nonempty, project_id: nonempty, add },
            ServiceDeleteRequested { host: nonempty },
            ServerResizeConfirmRequested { instance_id } as InstanceRef,
            ServerResizeRevertRequested { instance_id } as InstanceRef,
            SagaStepTimedOut { instance_id, step, deadline_ms },
            ConsoleTokenRequested { instance_id, token_hash: nonempty, console_type: nonempty },
            ConsoleOutputRequested { instance_id, length },
        }
        wraps {
            FlavorCreateRequested(flavor),
            ImageCreateRequested(image),
            ImageUpdateRequested(image),
            ServerGroupCreateRequested(group),
            AggregateCreateRequested(aggregate),
            KeypairCreateRequested(keypair),
            ServiceUpdateRequested(status),
        }
        boxes {
            ServerCreateRequested,
            ImagePatchRequested,
            ImageUploadFinishRequested,
            FlavorUpdateRequested,
            ServiceChangeRequested,
            ServerMigrationRequested,
            ServerRebuildRequested,
        }
        units {}
    }
    InstanceEvent in Instance {
        fields {
            IntentRejected {
                intent_type,
                kind: with rejection(kind, code, invalid_state),
                message,
            },
            InstanceScheduled { host: nonempty, alternates, attempt },
            InstanceRescheduled { host: nonempty, alternates, attempt, reason },
            InstanceBecameActive { power_state, launched_at_ms },
            InstanceFailed { fault },
            InstanceDeleted { deleted_at_ms },
            InstanceTaskStarted { action, task_state },
            InstanceTaskCompleted { action, vm_state, power_state },
            InstanceTaskFailed { action, vm_state, power_state, fault },
            InstanceLocked { locked_by: nonempty, reason },
            InstanceUpdated { name: nonempty, description, access, hostname },
            InstanceMetadataSet { metadata },
            InstanceTagsSet { tags },
            RebuildCompleted { vm_state, power_state },
            ConsoleOutputRead { output },
            InstancePowerStateSynced { power_state },
        }
        wraps {}
        boxes {
            InstanceCreated,
            MigrationStarted as MigrationRecord,
            MigrationScheduled as MigrationProgress,
            ResizeMigrationStarted as MigrationProgress | "ResizeMigrating",
            ResizeMigrated as MigrationProgress,
            ResizeFinishStarted as MigrationProgress | "ResizeFinishing",
            ResizeFinished as MigrationProgress,
            ResizeConfirmStarted as MigrationProgress | "ResizeConfirming",
            ResizeConfirmed as MigrationProgress,
            ResizeRevertStarted as MigrationProgress | "ResizeReverting",
            ResizeReverted as MigrationProgress,
            MigrationAborted as MigrationProgress,
            MigrationErrored as MigrationProgress,
            LiveMigrationStarted as MigrationProgress | "LiveMigrationRunning",
            LiveMigrated as MigrationProgress,
            Evacuated as MigrationProgress,
            RebuildStarted,
            ConsoleTokenIssued,
        }
        units {
            InstanceDeleteStarted | "InstanceDeleting",
            InstanceUnlocked,
            RebuildSpawnBegan | "RebuildSpawning",
        }
    }
    SchedulerEvent in Scheduler {
        fields {
            HostsSelected { hosts: nonempty, request_id, instance_id },
            NoValidHostFound { request_id, instance_id, reason },
        }
        wraps {}
        boxes { SelectHostsRequested }
        units {}
    }
    ComputeCommand in Compute {
        fields {
            DestroyInstance { instance_id, host: nonempty },
            PerformServerAction { instance_id, host: nonempty, action },
            GetConsoleOutput { instance_id, host: nonempty, length, request_id },
        }
        wraps {}
        boxes {
            SpawnInstance,
            PrepResize as MigrationCommand,
            MigrateDiskAndPowerOff as MigrationCommand,
            FinishMigration as MigrationCommand,
            ConfirmMigration as MigrationCommand,
            RevertMigration as MigrationCommand,
            FinishRevertMigration as MigrationCommand,
            DropMigrationClaim as MigrationCommand,
            LiveMigrateInstance as MigrationCommand,
            RebuildInstance as MigrationCommand,
            RebuildEvacuatedInstance as MigrationCommand,
            CleanupEvacuatedInstance as MigrationCommand,
        }
        units {}
    }
    ComputeFact in ComputeFact {
        fields {
            ClaimSucceeded { instance_id, host: nonempty, attempt, usage },
            ClaimFailed { instance_id, host: nonempty, attempt, reason, usage },
            InstanceSpawned { instance_id, host: nonempty, attempt, power_state },
            SpawnFailed { instance_id, host: nonempty, attempt, reason, usage },
            InstanceDestroyed { instance_id, host: nonempty, usage },
            ServerActionPerformed { instance_id, host: nonempty, action, power_state },
            ServerActionFailed { instance_id, host: nonempty, action, reason, power_state },
            ConsoleEndpointReported { instance_id, host: nonempty, address, port },
            SnapshotProgressed {
                instance_id, host: nonempty, action, task_state, size, checksum, os_hash_value,
            },
            ConsoleOutputFetched { instance_id, host: nonempty, request_id, output, error },
            PowerStateObserved { instance_id, host: nonempty, power_state },
        }
        wraps {}
        boxes {
            ResizeClaimSucceeded as MigrationFact,
            ResizeClaimFailed as MigrationFact,
            DiskMigratedAndPoweredOff as MigrationFact,
            MigrationFinishedOnDest as MigrationFact,
            MigrationConfirmedOnSource as MigrationFact,
            MigrationRevertedOnDest as MigrationFact,
            RevertFinishedOnSource as MigrationFact,
            InstanceLiveMigrated as MigrationFact,
            RebuildSpawnStarted as MigrationFact,
            InstanceRebuilt as MigrationFact,
            EvacuatedInstanceCleanedUp as MigrationFact,
            MigrationStepFailed as MigrationFact,
        }
        units {}
    }
    HostEvent in Host {
        fields {
            HostHeartbeat { host: nonempty, usage },
            ServiceDeleted { host: nonempty },
        }
        wraps { ServiceUpdated(status) }
        boxes { HostRegistered }
        units {}
    }
    BillingEvent in Billing {
        fields {}
        wraps {}
        boxes { UsageRated }
        units {}
    }
    CatalogEvent in Catalog {
        fields {
            ImageDeleted { image_id },
            ServerGroupDeleted { group_id },
            AggregateHostAdded { aggregate, host: nonempty },
            AggregateHostRemoved { aggregate, host: nonempty },
            AggregateDeleted { aggregate_id },
            QuotaSetUpdated { project_id: nonempty, limits },
            QuotaSetDeleted { project_id: nonempty },
            QuotaClassSetUpdated { class_name: nonempty, limits },
            TokenRevoked { audit_id: nonempty, expires_at_ms },
            KeypairDeleted { user_id: nonempty, name: nonempty },
            FlavorDeleted { flavor_id: nonempty },
            FlavorAccessAdded { flavor_id: nonempty, project_id: nonempty },
            FlavorAccessRemoved { flavor_id: nonempty, project_id: nonempty },
            DomainDeleted { domain_id: nonempty },
            ProjectDeleted { project_id: nonempty },
            UserDeleted { user_id: nonempty },
            GroupDeleted { group_id: nonempty },
            RoleDeleted { role_id: nonempty },
            GroupMemberAdded { group_id: nonempty, user_id: nonempty } as GroupMembership,
            GroupMemberRemoved { group_id: nonempty, user_id: nonempty } as GroupMembership,
            ApplicationCredentialDeleted { user_id: nonempty, application_credential_id: nonempty },
        }
        wraps {
            FlavorCreated(flavor),
            ImageCreated(image),
            ImageUpdated(image),
            ServerGroupCreated(group),
            AggregateCreated(aggregate),
            AggregateUpdated(aggregate),
            AggregateMetadataSet(aggregate),
            KeypairCreated(keypair),
            FlavorUpdated(flavor),
        }
        boxes {
            DomainCreated as IdentityDomain,
            DomainUpdated as IdentityDomain,
            ProjectCreated as IdentityProject,
            ProjectUpdated as IdentityProject,
            UserCreated as IdentityUser,
            UserUpdated as IdentityUser,
            GroupCreated as IdentityGroup,
            GroupUpdated as IdentityGroup,
            RoleCreated as IdentityRole,
            RoleUpdated as IdentityRole,
            RoleGranted as RoleGrant,
            RoleRevoked as RoleGrant,
            ApplicationCredentialCreated as ApplicationCredential,
        }
        units {}
    }
}

fn parse<M: Message + Default>(type_name: &str, bytes: &[u8]) -> R<M> {
    M::decode(bytes).map_err(|e| DecodeError::Malformed {
        what: type_name.to_owned(),
        message: e.to_string(),
    })
}

impl From<&Envelope> for pb::Envelope {
    fn from(env: &Envelope) -> Self {
        let m = &env.meta;
        pb::Envelope {
            event_id: m.event_id.to_string(),
            r#type: env.event.type_name().to_owned(),
            schema_version: m.schema_version,
            occurred_at_ms: m.occurred_at_ms,
            correlation_id: m.correlation_id.clone(),
            causation_id: m.causation_id.put(),
            actor: Some(pb::Actor {
                user_id: m.actor.user_id.clone(),
                project_id: m.actor.project_id.clone(),
                roles: m.actor.roles.clone(),
            }),
            aggregate_id: m.aggregate_id.clone(),
            aggregate_version: m.aggregate_version,
            payload: payload(env.event.clone()),
        }
    }
}

impl TryFrom<pb::Envelope> for Envelope {
    type Error = DecodeError;
    fn try_from(e: pb::Envelope) -> R<Self> {
        if e.schema_version == 0 || e.schema_version > SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                type_name: e.r#type,
                version: e.schema_version,
            });
        }
        let (meta, type_name, payload) = split(e)?;
        let event = record(&type_name, &payload)?;
        Ok(Envelope { meta, event })
    }
}

pub(crate) fn encode_envelope(env: &Envelope) -> Vec<u8> {
    pb::Envelope::from(env).encode_to_vec()
}

pub(crate) fn decode_envelope(bytes: &[u8]) -> R<Envelope> {
    parse::<pb::Envelope>("Envelope", bytes)?.try_into()
}

pub(crate) fn decode_meta(bytes: &[u8]) -> R<(Meta, String)> {
    let (meta, type_name, _) = split(parse("Envelope", bytes)?)?;
    Ok((meta, type_name))
}

/// The metadata, type name and raw payload of a parsed envelope.
fn split(e: pb::Envelope) -> R<(Meta, String, Vec<u8>)> {
    let actor = e.actor.unwrap_or_default();
    let meta = Meta {
        event_id: Wire::take(e.event_id, "event_id")?,
        schema_version: e.schema_version,
        occurred_at_ms: e.occurred_at_ms,
        correlation_id: e.correlation_id,
        causation_id: Wire::take(e.causation_id, "causation_id")?,
        actor: Actor {
            user_id: actor.user_id,
            project_id: actor.project_id,
            roles: actor.roles,
        },
        aggregate_id: e.aggregate_id,
        aggregate_version: e.aggregate_version,
    };
    Ok((meta, e.r#type, e.payload))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
