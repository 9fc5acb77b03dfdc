//! Conversions between the generated protobuf types and the domain types.
//! The only place that touches `pb`.

use crate::events::{
    CatalogEvent, ComputeCommand, ComputeFact, HostEvent, InstanceEvent, Intent, SchedulerEvent,
};
use prost::Message;
use uuid::Uuid;

use crate::actions::ServerAction;
use crate::envelope::{Actor, DecodeError, Envelope, Meta, SCHEMA_VERSION};
use crate::events::{self, Event};
use crate::pb;
use crate::rejection::RejectionKind;
use crate::state::{TaskState, VmState};
use crate::values::{Fault, Flavor, HostUsage, Image, Resources};

type R<T> = Result<T, DecodeError>;

fn uuid(field: &'static str, s: &str) -> R<Uuid> {
    Uuid::parse_str(s).map_err(|e| DecodeError::Invalid {
        field,
        message: e.to_string(),
    })
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn req<T>(field: &'static str, v: Option<T>) -> R<T> {
    v.ok_or(DecodeError::Missing(field))
}

fn nonempty(field: &'static str, s: String) -> R<String> {
    if s.is_empty() {
        Err(DecodeError::Missing(field))
    } else {
        Ok(s)
    }
}

fn rejection_kind_to_pb(kind: RejectionKind) -> (pb::RejectionKind, Option<pb::InvalidState>) {
    use pb::RejectionKind as K;
    let k = match kind {
        RejectionKind::Invalid => K::Invalid,
        RejectionKind::Forbidden => K::Forbidden,
        RejectionKind::OverQuota => K::OverQuota,
        RejectionKind::NotFound => K::NotFound,
        RejectionKind::Conflict => K::Conflict,
        RejectionKind::InvalidState {
            attribute,
            state,
            method,
        } => {
            return (
                K::InvalidState,
                Some(pb::InvalidState {
                    attribute,
                    state,
                    method,
                }),
            );
        }
        RejectionKind::Gone => K::Gone,
        RejectionKind::OverLimit => K::OverLimit,
        RejectionKind::Internal => K::Internal,
    };
    (k, None)
}

/// The kind of a rejection record. A record written before `kind` existed
/// has it unset and carries the HTTP status the conductor chose then; the
/// statuses it chose map one to one onto kinds (over-quota verdicts were
/// 403s, so they read as forbidden, which answers the same).
fn rejection_kind(kind: i32, code: i32, invalid: Option<pb::InvalidState>) -> R<RejectionKind> {
    use pb::RejectionKind as K;
    let kind = K::try_from(kind).map_err(|_| DecodeError::Invalid {
        field: "intent_rejected.kind",
        message: format!("unknown rejection kind {kind}"),
    })?;
    Ok(match kind {
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
            let s = req("intent_rejected.invalid_state", invalid)?;
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

fn server_group(g: pb::ServerGroupSpec) -> R<events::ServerGroupSpec> {
    Ok(events::ServerGroupSpec {
        id: uuid("server_group.id", &g.id)?,
        policy: events::ServerGroupPolicy::parse(&g.policy).ok_or_else(|| {
            DecodeError::Invalid {
                field: "server_group.policy",
                message: format!("unknown policy {:?}", g.policy),
            }
        })?,
        max_server_per_host: g.max_server_per_host,
        hosts: g.hosts,
        members: g
            .members
            .iter()
            .map(|m| uuid("server_group.members", m))
            .collect::<R<_>>()?,
    })
}

fn hints_to_pb(
    h: std::collections::BTreeMap<String, Vec<String>>,
) -> std::collections::BTreeMap<String, pb::HintValues> {
    h.into_iter()
        .map(|(k, values)| (k, pb::HintValues { values }))
        .collect()
}

fn hints_from_pb(
    h: std::collections::BTreeMap<String, pb::HintValues>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    h.into_iter().map(|(k, v)| (k, v.values)).collect()
}

fn group_to_pb(g: events::ServerGroup) -> pb::ServerGroup {
    pb::ServerGroup {
        id: g.id.to_string(),
        name: g.name,
        project_id: g.project_id,
        user_id: g.user_id,
        policy: g.policy.as_str().to_owned(),
        max_server_per_host: g.max_server_per_host,
        created_at_ms: g.created_at_ms,
    }
}

fn group_from_pb(g: Option<pb::ServerGroup>) -> R<Box<events::ServerGroup>> {
    let g = req("group", g)?;
    Ok(Box::new(events::ServerGroup {
        id: uuid("group.id", &g.id)?,
        name: g.name,
        project_id: g.project_id,
        user_id: g.user_id,
        policy: events::ServerGroupPolicy::parse(&g.policy).ok_or_else(|| {
            DecodeError::Invalid {
                field: "group.policy",
                message: format!("unknown policy {:?}", g.policy),
            }
        })?,
        max_server_per_host: g.max_server_per_host,
        created_at_ms: g.created_at_ms,
    }))
}

fn keypair_to_pb(k: events::Keypair) -> pb::Keypair {
    pb::Keypair {
        name: k.name,
        user_id: k.user_id,
        project_id: k.project_id,
        public_key: k.public_key,
        fingerprint: k.fingerprint,
        key_type: k.key_type,
        created_at_ms: k.created_at_ms,
        id: k.id,
    }
}

fn keypair_from_pb(k: Option<pb::Keypair>) -> R<Box<events::Keypair>> {
    let k = req("keypair", k)?;
    Ok(Box::new(events::Keypair {
        name: nonempty("keypair.name", k.name)?,
        user_id: nonempty("keypair.user_id", k.user_id)?,
        project_id: k.project_id,
        public_key: k.public_key,
        fingerprint: k.fingerprint,
        key_type: k.key_type,
        created_at_ms: k.created_at_ms,
        id: k.id,
    }))
}

fn service_to_pb(s: events::ServiceStatus) -> pb::ServiceStatus {
    pb::ServiceStatus {
        host: s.host,
        disabled: s.disabled,
        disabled_reason: s.disabled_reason,
        forced_down: s.forced_down,
    }
}

fn service_from_pb(s: Option<pb::ServiceStatus>) -> R<Box<events::ServiceStatus>> {
    let s = req("status", s)?;
    Ok(Box::new(events::ServiceStatus {
        host: nonempty("status.host", s.host)?,
        disabled: s.disabled,
        disabled_reason: s.disabled_reason,
        forced_down: s.forced_down,
    }))
}

fn aggregate_to_pb(a: events::HostAggregate) -> pb::HostAggregate {
    pb::HostAggregate {
        id: a.id,
        uuid: a.uuid.to_string(),
        name: a.name,
        hosts: a.hosts,
        metadata: a.metadata,
        created_at_ms: a.created_at_ms,
        updated_at_ms: a.updated_at_ms,
    }
}

fn aggregate_from_pb(a: Option<pb::HostAggregate>) -> R<Box<events::HostAggregate>> {
    let a = req("aggregate", a)?;
    Ok(Box::new(events::HostAggregate {
        id: a.id,
        uuid: uuid("aggregate.uuid", &a.uuid)?,
        name: a.name,
        hosts: a.hosts,
        metadata: a.metadata,
        created_at_ms: a.created_at_ms,
        updated_at_ms: a.updated_at_ms,
    }))
}

fn action_to_pb(a: ServerAction) -> pb::ServerAction {
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
        _ => pb::ServerAction {
            kind,
            ..Default::default()
        },
    }
}

fn action_from_pb(a: Option<pb::ServerAction>) -> R<ServerAction> {
    let a = req("action", a)?;
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
        other => {
            return Err(DecodeError::Invalid {
                field: "action.kind",
                message: format!("unknown server action {other:?}"),
            });
        }
    })
}

fn vm_state(s: &str) -> R<VmState> {
    VmState::parse(s).ok_or_else(|| DecodeError::Invalid {
        field: "vm_state",
        message: format!("unknown vm_state {s:?}"),
    })
}

fn task_state(s: &str) -> R<TaskState> {
    TaskState::parse(s).ok_or_else(|| DecodeError::Invalid {
        field: "task_state",
        message: format!("unknown task_state {s:?}"),
    })
}

// ---- values ----

impl From<Resources> for pb::Resources {
    fn from(r: Resources) -> Self {
        pb::Resources {
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
            disk_gb: r.disk_gb,
        }
    }
}

impl From<pb::Resources> for Resources {
    fn from(r: pb::Resources) -> Self {
        Resources {
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
            disk_gb: r.disk_gb,
        }
    }
}

impl From<HostUsage> for pb::HostUsage {
    fn from(u: HostUsage) -> Self {
        pb::HostUsage {
            vcpus_used: u.vcpus_used,
            memory_mb_used: u.memory_mb_used,
            disk_gb_used: u.disk_gb_used,
            instances: u.instances,
            generation: u.generation,
        }
    }
}

impl From<pb::HostUsage> for HostUsage {
    fn from(u: pb::HostUsage) -> Self {
        HostUsage {
            vcpus_used: u.vcpus_used,
            memory_mb_used: u.memory_mb_used,
            disk_gb_used: u.disk_gb_used,
            instances: u.instances,
            generation: u.generation,
        }
    }
}

fn usage(u: Option<pb::HostUsage>) -> HostUsage {
    u.map(Into::into).unwrap_or_default()
}

impl From<Flavor> for pb::Flavor {
    fn from(f: Flavor) -> Self {
        pb::Flavor {
            id: f.id,
            name: f.name,
            vcpus: f.vcpus,
            ram_mb: f.ram_mb,
            disk_gb: f.disk_gb,
            ephemeral_gb: f.ephemeral_gb,
            swap_mb: f.swap_mb,
            rxtx_factor: f.rxtx_factor,
            is_public: f.is_public,
            extra_specs: f.extra_specs,
            description: f.description.unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::Flavor> for Flavor {
    type Error = DecodeError;
    fn try_from(f: pb::Flavor) -> R<Self> {
        Ok(Flavor {
            id: nonempty("flavor.id", f.id)?,
            name: nonempty("flavor.name", f.name)?,
            vcpus: f.vcpus,
            ram_mb: f.ram_mb,
            disk_gb: f.disk_gb,
            ephemeral_gb: f.ephemeral_gb,
            swap_mb: f.swap_mb,
            rxtx_factor: f.rxtx_factor,
            is_public: f.is_public,
            extra_specs: f.extra_specs,
            description: opt(f.description),
        })
    }
}

fn flavor(f: Option<pb::Flavor>) -> R<Flavor> {
    req("flavor", f)?.try_into()
}

impl From<Image> for pb::Image {
    fn from(i: Image) -> Self {
        pb::Image {
            id: i.id.to_string(),
            name: i.name,
            status: i.status,
            size: i.size,
            min_disk: i.min_disk,
            min_ram: i.min_ram,
            disk_format: i.disk_format,
            container_format: i.container_format,
            properties: i.properties,
            owner: i.owner,
            checksum: i.checksum,
            visibility: i.visibility,
            created_at_ms: i.created_at_ms,
            protected: i.protected,
            tags: i.tags,
            os_hash_value: i.os_hash_value,
            updated_at_ms: i.updated_at_ms,
        }
    }
}

impl TryFrom<pb::Image> for Image {
    type Error = DecodeError;
    fn try_from(i: pb::Image) -> R<Self> {
        Ok(Image {
            id: uuid("image.id", &i.id)?,
            name: i.name,
            status: i.status,
            size: i.size,
            min_disk: i.min_disk,
            min_ram: i.min_ram,
            disk_format: i.disk_format,
            container_format: i.container_format,
            properties: i.properties,
            owner: i.owner,
            checksum: i.checksum,
            visibility: i.visibility,
            created_at_ms: i.created_at_ms,
            protected: i.protected,
            tags: i.tags,
            os_hash_value: i.os_hash_value,
            updated_at_ms: i.updated_at_ms,
        })
    }
}

fn image(i: Option<pb::Image>) -> R<Image> {
    req("image", i)?.try_into()
}

impl From<Fault> for pb::Fault {
    fn from(f: Fault) -> Self {
        pb::Fault {
            code: f.code,
            message: f.message,
            details: f.details,
            created_at_ms: f.created_at_ms,
        }
    }
}

impl From<pb::Fault> for Fault {
    fn from(f: pb::Fault) -> Self {
        Fault {
            code: f.code,
            message: f.message,
            details: f.details,
            created_at_ms: f.created_at_ms,
        }
    }
}

// ---- events ----

fn payload(event: &Event) -> Vec<u8> {
    match event.clone() {
        Event::Intent(Intent::ServerCreateRequested(r)) => {
            let r = *r;
            pb::ServerCreateRequested {
                instance_id: r.instance_id.to_string(),
                name: r.name,
                flavor: Some(r.flavor.into()),
                image: Some(r.image.into()),
                metadata: r.metadata,
                availability_zone: r.availability_zone.unwrap_or_default(),
                key_name: r.key_name.unwrap_or_default(),
                user_data: r.user_data.unwrap_or_default(),
                description: r.description.unwrap_or_default(),
                tags: r.tags,
                reservation_id: r.reservation_id,
                launch_index: r.launch_index,
                scheduler_hints: hints_to_pb(r.scheduler_hints),
                min_count: r.min_count,
                max_count: r.max_count,
            }
            .encode_to_vec()
        }
        Event::Intent(Intent::ServerDeleteRequested { instance_id, force }) => {
            pb::ServerDeleteRequested {
                instance_id: instance_id.to_string(),
                force,
            }
            .encode_to_vec()
        }
        Event::Intent(Intent::FlavorCreateRequested(f)) => pb::FlavorCreateRequested {
            flavor: Some(f.into()),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImageCreateRequested(i)) => pb::ImageCreateRequested {
            image: Some(i.into()),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImageUpdateRequested(i)) => pb::ImageUpdateRequested {
            image: Some(i.into()),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImageDeleteRequested { image_id }) => pb::ImageDeleteRequested {
            image_id: image_id.to_string(),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImagePatchRequested(p)) => pb::ImagePatchRequested {
            image_id: p.image_id.to_string(),
            ops: p
                .ops
                .into_iter()
                .map(|op| pb::ImagePatchOp {
                    op: op.verb.as_str().to_owned(),
                    attribute: op.attribute,
                    value_json: op.value.map(|v| v.to_string()),
                })
                .collect(),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImageUploadRequested { image_id }) => pb::ImageUploadRequested {
            image_id: image_id.to_string(),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImageUploadFinishRequested(d)) => pb::ImageUploadFinishRequested {
            image_id: d.image_id.to_string(),
            size: d.size,
            checksum: d.checksum,
            os_hash_value: d.os_hash_value,
        }
        .encode_to_vec(),
        Event::Intent(Intent::ImageUploadAbortRequested { image_id }) => {
            pb::ImageUploadAbortRequested {
                image_id: image_id.to_string(),
            }
            .encode_to_vec()
        }
        Event::Intent(Intent::ServerGroupCreateRequested(g)) => pb::ServerGroupCreateRequested {
            group: Some(group_to_pb(*g)),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServerGroupDeleteRequested { group_id }) => {
            pb::ServerGroupDeleteRequested {
                group_id: group_id.to_string(),
            }
            .encode_to_vec()
        }
        Event::Intent(Intent::AggregateCreateRequested(a)) => pb::AggregateCreateRequested {
            aggregate: Some(aggregate_to_pb(*a)),
        }
        .encode_to_vec(),
        Event::Intent(Intent::AggregateUpdateRequested {
            aggregate_id,
            name,
            availability_zone,
        }) => pb::AggregateUpdateRequested {
            aggregate_id,
            name,
            availability_zone,
        }
        .encode_to_vec(),
        Event::Intent(Intent::AggregateDeleteRequested { aggregate_id }) => {
            pb::AggregateDeleteRequested { aggregate_id }.encode_to_vec()
        }
        Event::Intent(Intent::AggregateHostAddRequested { aggregate_id, host }) => {
            pb::AggregateHostAddRequested { aggregate_id, host }.encode_to_vec()
        }
        Event::Intent(Intent::AggregateHostRemoveRequested { aggregate_id, host }) => {
            pb::AggregateHostRemoveRequested { aggregate_id, host }.encode_to_vec()
        }
        Event::Intent(Intent::AggregateMetadataSetRequested {
            aggregate_id,
            metadata,
        }) => {
            let mut set = std::collections::BTreeMap::new();
            let mut removed = Vec::new();
            for (k, v) in metadata {
                match v {
                    Some(v) => {
                        set.insert(k, v);
                    }
                    None => removed.push(k),
                }
            }
            pb::AggregateMetadataSetRequested {
                aggregate_id,
                set,
                removed,
            }
            .encode_to_vec()
        }
        Event::Instance(InstanceEvent::IntentRejected {
            intent_type,
            kind,
            message,
        }) => {
            let (kind, invalid_state) = rejection_kind_to_pb(kind);
            pb::IntentRejected {
                intent_type,
                code: 0,
                message,
                kind: kind.into(),
                invalid_state,
            }
            .encode_to_vec()
        }
        Event::Instance(InstanceEvent::InstanceCreated(c)) => {
            let c = *c;
            pb::InstanceCreated {
                name: c.name,
                project_id: c.project_id,
                user_id: c.user_id,
                flavor: Some(c.flavor.into()),
                image: Some(c.image.into()),
                metadata: c.metadata,
                availability_zone: c.availability_zone.unwrap_or_default(),
                key_name: c.key_name.unwrap_or_default(),
                user_data: c.user_data.unwrap_or_default(),
                description: c.description.unwrap_or_default(),
                tags: c.tags,
                reservation_id: c.reservation_id,
                launch_index: c.launch_index,
                created_at_ms: c.created_at_ms,
                scheduler_hints: hints_to_pb(c.scheduler_hints),
            }
            .encode_to_vec()
        }
        Event::Instance(InstanceEvent::InstanceScheduled {
            host,
            alternates,
            attempt,
        }) => pb::InstanceScheduled {
            host,
            alternates,
            attempt,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceRescheduled {
            host,
            alternates,
            attempt,
            reason,
        }) => pb::InstanceRescheduled {
            host,
            alternates,
            attempt,
            reason,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceBecameActive {
            power_state,
            launched_at_ms,
        }) => pb::InstanceBecameActive {
            power_state,
            launched_at_ms,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceFailed { fault }) => pb::InstanceFailed {
            fault: Some(fault.into()),
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceDeleteStarted) => {
            pb::InstanceDeleteStarted {}.encode_to_vec()
        }
        Event::Intent(Intent::ServerActionRequested {
            instance_id,
            action,
        }) => pb::ServerActionRequested {
            instance_id: instance_id.to_string(),
            action: Some(action_to_pb(action)),
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceTaskStarted { action, task_state }) => {
            pb::InstanceTaskStarted {
                action: Some(action_to_pb(action)),
                task_state: task_state.as_str().to_owned(),
            }
            .encode_to_vec()
        }
        Event::Instance(InstanceEvent::InstanceTaskCompleted {
            action,
            vm_state,
            power_state,
        }) => pb::InstanceTaskCompleted {
            action: Some(action_to_pb(action)),
            vm_state: vm_state.as_str().to_owned(),
            power_state,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceTaskFailed {
            action,
            vm_state,
            power_state,
            fault,
        }) => pb::InstanceTaskFailed {
            action: Some(action_to_pb(action)),
            vm_state: vm_state.as_str().to_owned(),
            power_state,
            fault: Some(fault.into()),
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceLocked { locked_by, reason }) => {
            pb::InstanceLocked { locked_by, reason }.encode_to_vec()
        }
        Event::Instance(InstanceEvent::InstanceUnlocked) => pb::InstanceUnlocked {}.encode_to_vec(),
        Event::Intent(Intent::QuotaSetRequested {
            project_id,
            limits,
            force,
        }) => pb::QuotaSetRequested {
            project_id,
            limits,
            force,
        }
        .encode_to_vec(),
        Event::Intent(Intent::QuotaResetRequested { project_id }) => {
            pb::QuotaResetRequested { project_id }.encode_to_vec()
        }
        Event::Catalog(CatalogEvent::QuotaSetUpdated { project_id, limits }) => {
            pb::QuotaSetUpdated { project_id, limits }.encode_to_vec()
        }
        Event::Catalog(CatalogEvent::QuotaSetDeleted { project_id }) => {
            pb::QuotaSetDeleted { project_id }.encode_to_vec()
        }
        Event::Catalog(CatalogEvent::TokenRevoked {
            audit_id,
            expires_at_ms,
        }) => pb::TokenRevoked {
            audit_id,
            expires_at_ms,
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id,
            name,
            description,
        }) => pb::ServerUpdateRequested {
            instance_id: instance_id.to_string(),
            name,
            set_description: description.is_some(),
            description: description.flatten(),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServerMetadataChangeRequested {
            instance_id,
            replace_all,
            set,
            remove,
        }) => pb::ServerMetadataChangeRequested {
            instance_id: instance_id.to_string(),
            replace_all,
            set,
            remove,
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServerTagsChangeRequested {
            instance_id,
            replace_all,
            add,
            remove,
        }) => pb::ServerTagsChangeRequested {
            instance_id: instance_id.to_string(),
            replace_all,
            add,
            remove,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceUpdated { name, description }) => {
            pb::InstanceUpdated { name, description }.encode_to_vec()
        }
        Event::Instance(InstanceEvent::InstanceMetadataSet { metadata }) => {
            pb::InstanceMetadataSet { metadata }.encode_to_vec()
        }
        Event::Instance(InstanceEvent::InstanceTagsSet { tags }) => {
            pb::InstanceTagsSet { tags }.encode_to_vec()
        }
        Event::Compute(ComputeCommand::PerformServerAction {
            instance_id,
            host,
            action,
        }) => pb::PerformServerAction {
            instance_id: instance_id.to_string(),
            host,
            action: Some(action_to_pb(action)),
        }
        .encode_to_vec(),
        Event::ComputeFact(ComputeFact::ServerActionPerformed {
            instance_id,
            host,
            action,
            power_state,
        }) => pb::ServerActionPerformed {
            instance_id: instance_id.to_string(),
            host,
            action: Some(action_to_pb(action)),
            power_state,
        }
        .encode_to_vec(),
        Event::ComputeFact(ComputeFact::ServerActionFailed {
            instance_id,
            host,
            action,
            reason,
            power_state,
        }) => pb::ServerActionFailed {
            instance_id: instance_id.to_string(),
            host,
            action: Some(action_to_pb(action)),
            reason,
            power_state,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::InstanceDeleted { deleted_at_ms }) => {
            pb::InstanceDeleted { deleted_at_ms }.encode_to_vec()
        }
        Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) => {
            let r = *r;
            pb::SelectHostsRequested {
                request_id: r.request_id.to_string(),
                instance_id: r.instance_id.to_string(),
                project_id: r.project_id,
                resources: Some(r.resources.into()),
                image_properties: r.image_properties,
                extra_specs: r.extra_specs,
                availability_zone: r.availability_zone.unwrap_or_default(),
                ignore_hosts: r.ignore_hosts,
                num_alternates: r.num_alternates,
                scheduler_hints: r
                    .scheduler_hints
                    .into_iter()
                    .map(|(k, values)| (k, pb::HintValues { values }))
                    .collect(),
                server_group: r.server_group.map(|g| pb::ServerGroupSpec {
                    id: g.id.to_string(),
                    policy: g.policy.as_str().to_owned(),
                    max_server_per_host: g.max_server_per_host,
                    hosts: g.hosts,
                    members: g.members.iter().map(Uuid::to_string).collect(),
                }),
                image_id: r.image_id.map(|i| i.to_string()).unwrap_or_default(),
                flavor_name: r.flavor_name,
            }
            .encode_to_vec()
        }
        Event::Scheduler(SchedulerEvent::HostsSelected {
            request_id,
            instance_id,
            hosts,
        }) => pb::HostsSelected {
            request_id: request_id.to_string(),
            instance_id: instance_id.to_string(),
            hosts,
        }
        .encode_to_vec(),
        Event::Scheduler(SchedulerEvent::NoValidHostFound {
            request_id,
            instance_id,
            reason,
        }) => pb::NoValidHostFound {
            request_id: request_id.to_string(),
            instance_id: instance_id.to_string(),
            reason,
        }
        .encode_to_vec(),
        Event::Compute(ComputeCommand::SpawnInstance(s)) => {
            let s = *s;
            pb::SpawnInstance {
                instance_id: s.instance_id.to_string(),
                host: s.host,
                attempt: s.attempt,
                project_id: s.project_id,
                name: s.name,
                flavor: Some(s.flavor.into()),
                image: Some(s.image.into()),
            }
            .encode_to_vec()
        }
        Event::Compute(ComputeCommand::DestroyInstance { instance_id, host }) => {
            pb::DestroyInstance {
                instance_id: instance_id.to_string(),
                host,
            }
            .encode_to_vec()
        }
        Event::ComputeFact(ComputeFact::ClaimSucceeded {
            instance_id,
            host,
            attempt,
            usage,
        }) => pb::ClaimSucceeded {
            instance_id: instance_id.to_string(),
            host,
            attempt,
            usage: Some(usage.into()),
        }
        .encode_to_vec(),
        Event::ComputeFact(ComputeFact::ClaimFailed {
            instance_id,
            host,
            attempt,
            reason,
            usage,
        }) => pb::ClaimFailed {
            instance_id: instance_id.to_string(),
            host,
            attempt,
            reason,
            usage: Some(usage.into()),
        }
        .encode_to_vec(),
        Event::ComputeFact(ComputeFact::InstanceSpawned {
            instance_id,
            host,
            attempt,
            power_state,
        }) => pb::InstanceSpawned {
            instance_id: instance_id.to_string(),
            host,
            attempt,
            power_state,
        }
        .encode_to_vec(),
        Event::ComputeFact(ComputeFact::SpawnFailed {
            instance_id,
            host,
            attempt,
            reason,
            usage,
        }) => pb::SpawnFailed {
            instance_id: instance_id.to_string(),
            host,
            attempt,
            reason,
            usage: Some(usage.into()),
        }
        .encode_to_vec(),
        Event::ComputeFact(ComputeFact::InstanceDestroyed {
            instance_id,
            host,
            usage,
        }) => pb::InstanceDestroyed {
            instance_id: instance_id.to_string(),
            host,
            usage: Some(usage.into()),
        }
        .encode_to_vec(),
        Event::Host(HostEvent::HostRegistered(h)) => {
            let h = *h;
            pb::HostRegistered {
                host: h.host,
                capacity: Some(h.capacity.into()),
                usage: Some(h.usage.into()),
                cpu_arch: h.cpu_arch,
                hypervisor_type: h.hypervisor_type,
                hypervisor_version: h.hypervisor_version,
                availability_zone: h.availability_zone,
                capabilities: h.capabilities,
                driver: h.driver,
            }
            .encode_to_vec()
        }
        Event::Host(HostEvent::HostHeartbeat { host, usage }) => pb::HostHeartbeat {
            host,
            usage: Some(usage.into()),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::FlavorCreated(f)) => pb::FlavorCreated {
            flavor: Some(f.into()),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::ImageCreated(i)) => pb::ImageCreated {
            image: Some(i.into()),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::ImageUpdated(i)) => pb::ImageUpdated {
            image: Some(i.into()),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::ImageDeleted { image_id }) => pb::ImageDeleted {
            image_id: image_id.to_string(),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::ServerGroupCreated(g)) => pb::ServerGroupCreated {
            group: Some(group_to_pb(*g)),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::ServerGroupDeleted { group_id }) => pb::ServerGroupDeleted {
            group_id: group_id.to_string(),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::AggregateCreated(a)) => pb::AggregateCreated {
            aggregate: Some(aggregate_to_pb(*a)),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::AggregateUpdated(a)) => pb::AggregateUpdated {
            aggregate: Some(aggregate_to_pb(*a)),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::AggregateHostAdded { aggregate, host }) => {
            pb::AggregateHostAdded {
                aggregate: Some(aggregate_to_pb(*aggregate)),
                host,
            }
            .encode_to_vec()
        }
        Event::Catalog(CatalogEvent::AggregateHostRemoved { aggregate, host }) => {
            pb::AggregateHostRemoved {
                aggregate: Some(aggregate_to_pb(*aggregate)),
                host,
            }
            .encode_to_vec()
        }
        Event::Catalog(CatalogEvent::AggregateMetadataSet(a)) => pb::AggregateMetadataSet {
            aggregate: Some(aggregate_to_pb(*a)),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::AggregateDeleted { aggregate_id }) => {
            pb::AggregateDeleted { aggregate_id }.encode_to_vec()
        }
        Event::Intent(Intent::KeypairCreateRequested(k)) => pb::KeypairCreateRequested {
            keypair: Some(keypair_to_pb(*k)),
        }
        .encode_to_vec(),
        Event::Intent(Intent::KeypairDeleteRequested { user_id, name }) => {
            pb::KeypairDeleteRequested { user_id, name }.encode_to_vec()
        }
        Event::Catalog(CatalogEvent::KeypairCreated(k)) => pb::KeypairCreated {
            keypair: Some(keypair_to_pb(*k)),
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::KeypairDeleted { user_id, name }) => {
            pb::KeypairDeleted { user_id, name }.encode_to_vec()
        }
        Event::Intent(Intent::FlavorUpdateRequested(u)) => {
            let u = *u;
            pb::FlavorUpdateRequested {
                flavor_id: u.flavor_id,
                extra_specs_set: u.extra_specs_set.into_iter().collect(),
                extra_specs_unset: u.extra_specs_unset,
                set_description: u.description.is_some(),
                description: u.description.flatten(),
            }
            .encode_to_vec()
        }
        Event::Catalog(CatalogEvent::FlavorUpdated(f)) => pb::FlavorUpdated {
            flavor: Some(f.into()),
        }
        .encode_to_vec(),
        Event::Intent(Intent::FlavorDeleteRequested { flavor_id }) => {
            pb::FlavorDeleteRequested { flavor_id }.encode_to_vec()
        }
        Event::Catalog(CatalogEvent::FlavorDeleted { flavor_id }) => {
            pb::FlavorDeleted { flavor_id }.encode_to_vec()
        }
        Event::Intent(Intent::FlavorAccessChangeRequested {
            flavor_id,
            project_id,
            add,
        }) => pb::FlavorAccessChangeRequested {
            flavor_id,
            project_id,
            add,
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::FlavorAccessAdded {
            flavor_id,
            project_id,
        }) => pb::FlavorAccessAdded {
            flavor_id,
            project_id,
        }
        .encode_to_vec(),
        Event::Catalog(CatalogEvent::FlavorAccessRemoved {
            flavor_id,
            project_id,
        }) => pb::FlavorAccessRemoved {
            flavor_id,
            project_id,
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServiceUpdateRequested(s)) => pb::ServiceUpdateRequested {
            status: Some(service_to_pb(*s)),
        }
        .encode_to_vec(),
        Event::Host(HostEvent::ServiceUpdated(s)) => pb::ServiceUpdated {
            status: Some(service_to_pb(*s)),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServiceChangeRequested(c)) => {
            let c = *c;
            pb::ServiceChangeRequested {
                host: c.host,
                disabled: c.disabled,
                change_disabled_reason: c.disabled_reason.is_some(),
                disabled_reason: c.disabled_reason.flatten(),
                forced_down: c.forced_down,
                seen: Some(service_to_pb(c.seen)),
            }
            .encode_to_vec()
        }
        Event::Intent(Intent::ServiceDeleteRequested { host }) => {
            pb::ServiceDeleteRequested { host }.encode_to_vec()
        }
        Event::Host(HostEvent::ServiceDeleted { host }) => {
            pb::ServiceDeleted { host }.encode_to_vec()
        }
        Event::DeadLetter(d) => {
            let d = *d;
            pb::DeadLetter {
                source_topic: d.source_topic,
                partition: d.partition,
                offset: d.offset,
                consumer: d.consumer,
                error: d.error,
                key: d.key,
                value: d.value,
            }
            .encode_to_vec()
        }
        other => {
            crate::convert_saga::payload(&other).expect("every record type has a payload encoding")
        }
    }
}

fn parse<M: Message + Default>(type_name: &str, bytes: &[u8]) -> R<M> {
    M::decode(bytes).map_err(|e| DecodeError::Malformed {
        what: type_name.to_owned(),
        message: e.to_string(),
    })
}

fn event(type_name: &str, bytes: &[u8]) -> R<Event> {
    Ok(match type_name {
        "ServerCreateRequested" => {
            let r: pb::ServerCreateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerCreateRequested(Box::new(
                events::ServerCreateRequested {
                    instance_id: uuid("instance_id", &r.instance_id)?,
                    name: r.name,
                    flavor: flavor(r.flavor)?,
                    image: image(r.image)?,
                    metadata: r.metadata,
                    availability_zone: opt(r.availability_zone),
                    key_name: opt(r.key_name),
                    user_data: opt(r.user_data),
                    description: opt(r.description),
                    tags: r.tags,
                    reservation_id: r.reservation_id,
                    launch_index: r.launch_index,
                    scheduler_hints: hints_from_pb(r.scheduler_hints),
                    min_count: r.min_count.max(1),
                    max_count: r.max_count.max(r.min_count).max(1),
                },
            )))
        }
        "ServerDeleteRequested" => {
            let r: pb::ServerDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
                force: r.force,
            })
        }
        "FlavorCreateRequested" => {
            let r: pb::FlavorCreateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::FlavorCreateRequested(flavor(r.flavor)?))
        }
        "ImageCreateRequested" => {
            let r: pb::ImageCreateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ImageCreateRequested(image(r.image)?))
        }
        "ImageUpdateRequested" => {
            let r: pb::ImageUpdateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ImageUpdateRequested(image(r.image)?))
        }
        "ImageDeleteRequested" => {
            let r: pb::ImageDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ImageDeleteRequested {
                image_id: uuid("image_id", &r.image_id)?,
            })
        }
        "ImagePatchRequested" => {
            let r: pb::ImagePatchRequested = parse(type_name, bytes)?;
            let ops = r
                .ops
                .into_iter()
                .map(|op| -> R<crate::image::PatchOp> {
                    let verb = crate::image::PatchVerb::parse(&op.op).ok_or_else(|| {
                        DecodeError::Invalid {
                            field: "ops.op",
                            message: format!("unknown operation {:?}", op.op),
                        }
                    })?;
                    let value = op
                        .value_json
                        .map(|v| serde_json::from_str(&v))
                        .transpose()
                        .map_err(|e| DecodeError::Invalid {
                            field: "ops.value_json",
                            message: e.to_string(),
                        })?;
                    Ok(crate::image::PatchOp {
                        verb,
                        attribute: nonempty("ops.attribute", op.attribute)?,
                        value,
                    })
                })
                .collect::<R<_>>()?;
            Event::Intent(Intent::ImagePatchRequested(Box::new(
                crate::image::ImagePatch {
                    image_id: uuid("image_id", &r.image_id)?,
                    ops,
                },
            )))
        }
        "ImageUploadRequested" => {
            let r: pb::ImageUploadRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ImageUploadRequested {
                image_id: uuid("image_id", &r.image_id)?,
            })
        }
        "ImageUploadFinishRequested" => {
            let r: pb::ImageUploadFinishRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ImageUploadFinishRequested(Box::new(
                crate::image::ImageData {
                    image_id: uuid("image_id", &r.image_id)?,
                    size: r.size,
                    checksum: nonempty("checksum", r.checksum)?,
                    os_hash_value: nonempty("os_hash_value", r.os_hash_value)?,
                },
            )))
        }
        "ImageUploadAbortRequested" => {
            let r: pb::ImageUploadAbortRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ImageUploadAbortRequested {
                image_id: uuid("image_id", &r.image_id)?,
            })
        }
        "ServerGroupCreateRequested" => {
            let r: pb::ServerGroupCreateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerGroupCreateRequested(group_from_pb(r.group)?))
        }
        "ServerGroupDeleteRequested" => {
            let r: pb::ServerGroupDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerGroupDeleteRequested {
                group_id: uuid("group_id", &r.group_id)?,
            })
        }
        "AggregateCreateRequested" => {
            let r: pb::AggregateCreateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::AggregateCreateRequested(aggregate_from_pb(
                r.aggregate,
            )?))
        }
        "AggregateUpdateRequested" => {
            let r: pb::AggregateUpdateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::AggregateUpdateRequested {
                aggregate_id: r.aggregate_id,
                name: r.name,
                availability_zone: r.availability_zone,
            })
        }
        "AggregateDeleteRequested" => {
            let r: pb::AggregateDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::AggregateDeleteRequested {
                aggregate_id: r.aggregate_id,
            })
        }
        "AggregateHostAddRequested" => {
            let r: pb::AggregateHostAddRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::AggregateHostAddRequested {
                aggregate_id: r.aggregate_id,
                host: nonempty("host", r.host)?,
            })
        }
        "AggregateHostRemoveRequested" => {
            let r: pb::AggregateHostRemoveRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::AggregateHostRemoveRequested {
                aggregate_id: r.aggregate_id,
                host: nonempty("host", r.host)?,
            })
        }
        "AggregateMetadataSetRequested" => {
            let r: pb::AggregateMetadataSetRequested = parse(type_name, bytes)?;
            let mut metadata: std::collections::BTreeMap<String, Option<String>> =
                r.set.into_iter().map(|(k, v)| (k, Some(v))).collect();
            metadata.extend(r.removed.into_iter().map(|k| (k, None)));
            Event::Intent(Intent::AggregateMetadataSetRequested {
                aggregate_id: r.aggregate_id,
                metadata,
            })
        }
        "IntentRejected" => {
            let r: pb::IntentRejected = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::IntentRejected {
                kind: rejection_kind(r.kind, r.code, r.invalid_state)?,
                intent_type: r.intent_type,
                message: r.message,
            })
        }
        "InstanceCreated" => {
            let c: pb::InstanceCreated = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceCreated(Box::new(
                events::InstanceCreated {
                    name: c.name,
                    project_id: nonempty("project_id", c.project_id)?,
                    user_id: c.user_id,
                    flavor: flavor(c.flavor)?,
                    image: image(c.image)?,
                    metadata: c.metadata,
                    availability_zone: opt(c.availability_zone),
                    key_name: opt(c.key_name),
                    user_data: opt(c.user_data),
                    description: opt(c.description),
                    tags: c.tags,
                    reservation_id: c.reservation_id,
                    launch_index: c.launch_index,
                    created_at_ms: c.created_at_ms,
                    scheduler_hints: hints_from_pb(c.scheduler_hints),
                },
            )))
        }
        "InstanceScheduled" => {
            let r: pb::InstanceScheduled = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceScheduled {
                host: nonempty("host", r.host)?,
                alternates: r.alternates,
                attempt: r.attempt,
            })
        }
        "InstanceRescheduled" => {
            let r: pb::InstanceRescheduled = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceRescheduled {
                host: nonempty("host", r.host)?,
                alternates: r.alternates,
                attempt: r.attempt,
                reason: r.reason,
            })
        }
        "InstanceBecameActive" => {
            let r: pb::InstanceBecameActive = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceBecameActive {
                power_state: r.power_state,
                launched_at_ms: r.launched_at_ms,
            })
        }
        "InstanceFailed" => {
            let r: pb::InstanceFailed = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceFailed {
                fault: req("fault", r.fault)?.into(),
            })
        }
        "ServerActionRequested" => {
            let r: pb::ServerActionRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerActionRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
                action: action_from_pb(r.action)?,
            })
        }
        "InstanceTaskStarted" => {
            let r: pb::InstanceTaskStarted = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceTaskStarted {
                action: action_from_pb(r.action)?,
                task_state: task_state(&r.task_state)?,
            })
        }
        "InstanceTaskCompleted" => {
            let r: pb::InstanceTaskCompleted = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceTaskCompleted {
                action: action_from_pb(r.action)?,
                vm_state: vm_state(&r.vm_state)?,
                power_state: r.power_state,
            })
        }
        "InstanceTaskFailed" => {
            let r: pb::InstanceTaskFailed = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceTaskFailed {
                action: action_from_pb(r.action)?,
                vm_state: vm_state(&r.vm_state)?,
                power_state: r.power_state,
                fault: req("fault", r.fault)?.into(),
            })
        }
        "InstanceLocked" => {
            let r: pb::InstanceLocked = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceLocked {
                locked_by: nonempty("locked_by", r.locked_by)?,
                reason: r.reason,
            })
        }
        "ServerUpdateRequested" => {
            let r: pb::ServerUpdateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerUpdateRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
                name: r.name,
                description: r.set_description.then_some(r.description),
            })
        }
        "ServerMetadataChangeRequested" => {
            let r: pb::ServerMetadataChangeRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerMetadataChangeRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
                replace_all: r.replace_all,
                set: r.set,
                remove: r.remove,
            })
        }
        "ServerTagsChangeRequested" => {
            let r: pb::ServerTagsChangeRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServerTagsChangeRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
                replace_all: r.replace_all,
                add: r.add,
                remove: r.remove,
            })
        }
        "InstanceUpdated" => {
            let r: pb::InstanceUpdated = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceUpdated {
                name: nonempty("name", r.name)?,
                description: r.description,
            })
        }
        "InstanceMetadataSet" => {
            let r: pb::InstanceMetadataSet = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceMetadataSet {
                metadata: r.metadata,
            })
        }
        "InstanceTagsSet" => {
            let r: pb::InstanceTagsSet = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceTagsSet { tags: r.tags })
        }
        "QuotaSetRequested" => {
            let r: pb::QuotaSetRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::QuotaSetRequested {
                project_id: nonempty("project_id", r.project_id)?,
                limits: r.limits,
                force: r.force,
            })
        }
        "QuotaResetRequested" => {
            let r: pb::QuotaResetRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::QuotaResetRequested {
                project_id: nonempty("project_id", r.project_id)?,
            })
        }
        "QuotaSetUpdated" => {
            let r: pb::QuotaSetUpdated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::QuotaSetUpdated {
                project_id: nonempty("project_id", r.project_id)?,
                limits: r.limits,
            })
        }
        "QuotaSetDeleted" => {
            let r: pb::QuotaSetDeleted = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::QuotaSetDeleted {
                project_id: nonempty("project_id", r.project_id)?,
            })
        }
        "TokenRevoked" => {
            let r: pb::TokenRevoked = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::TokenRevoked {
                audit_id: nonempty("audit_id", r.audit_id)?,
                expires_at_ms: r.expires_at_ms,
            })
        }
        "InstanceUnlocked" => {
            let _: pb::InstanceUnlocked = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceUnlocked)
        }
        "PerformServerAction" => {
            let r: pb::PerformServerAction = parse(type_name, bytes)?;
            Event::Compute(ComputeCommand::PerformServerAction {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                action: action_from_pb(r.action)?,
            })
        }
        "ServerActionPerformed" => {
            let r: pb::ServerActionPerformed = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::ServerActionPerformed {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                action: action_from_pb(r.action)?,
                power_state: r.power_state,
            })
        }
        "ServerActionFailed" => {
            let r: pb::ServerActionFailed = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::ServerActionFailed {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                action: action_from_pb(r.action)?,
                reason: r.reason,
                power_state: r.power_state,
            })
        }
        "InstanceDeleteStarted" | "InstanceDeleting" => {
            let _: pb::InstanceDeleteStarted = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceDeleteStarted)
        }
        "InstanceDeleted" => {
            let r: pb::InstanceDeleted = parse(type_name, bytes)?;
            Event::Instance(InstanceEvent::InstanceDeleted {
                deleted_at_ms: r.deleted_at_ms,
            })
        }
        "SelectHostsRequested" => {
            let r: pb::SelectHostsRequested = parse(type_name, bytes)?;
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
                events::SelectHostsRequested {
                    request_id: uuid("request_id", &r.request_id)?,
                    instance_id: uuid("instance_id", &r.instance_id)?,
                    project_id: r.project_id,
                    resources: req("resources", r.resources)?.into(),
                    image_properties: r.image_properties,
                    extra_specs: r.extra_specs,
                    availability_zone: opt(r.availability_zone),
                    ignore_hosts: r.ignore_hosts,
                    num_alternates: r.num_alternates,
                    scheduler_hints: r
                        .scheduler_hints
                        .into_iter()
                        .map(|(k, v)| (k, v.values))
                        .collect(),
                    server_group: r.server_group.map(server_group).transpose()?,
                    image_id: opt(r.image_id).map(|i| uuid("image_id", &i)).transpose()?,
                    flavor_name: r.flavor_name,
                },
            )))
        }
        "HostsSelected" => {
            let r: pb::HostsSelected = parse(type_name, bytes)?;
            if r.hosts.is_empty() {
                return Err(DecodeError::Missing("hosts"));
            }
            Event::Scheduler(SchedulerEvent::HostsSelected {
                request_id: uuid("request_id", &r.request_id)?,
                instance_id: uuid("instance_id", &r.instance_id)?,
                hosts: r.hosts,
            })
        }
        "NoValidHostFound" => {
            let r: pb::NoValidHostFound = parse(type_name, bytes)?;
            Event::Scheduler(SchedulerEvent::NoValidHostFound {
                request_id: uuid("request_id", &r.request_id)?,
                instance_id: uuid("instance_id", &r.instance_id)?,
                reason: r.reason,
            })
        }
        "SpawnInstance" => {
            let s: pb::SpawnInstance = parse(type_name, bytes)?;
            Event::Compute(ComputeCommand::SpawnInstance(Box::new(
                events::SpawnInstance {
                    instance_id: uuid("instance_id", &s.instance_id)?,
                    host: nonempty("host", s.host)?,
                    attempt: s.attempt,
                    project_id: s.project_id,
                    name: s.name,
                    flavor: flavor(s.flavor)?,
                    image: image(s.image)?,
                },
            )))
        }
        "DestroyInstance" => {
            let r: pb::DestroyInstance = parse(type_name, bytes)?;
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
            })
        }
        "ClaimSucceeded" => {
            let r: pb::ClaimSucceeded = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::ClaimSucceeded {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                attempt: r.attempt,
                usage: usage(r.usage),
            })
        }
        "ClaimFailed" => {
            let r: pb::ClaimFailed = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::ClaimFailed {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                attempt: r.attempt,
                reason: r.reason,
                usage: usage(r.usage),
            })
        }
        "InstanceSpawned" => {
            let r: pb::InstanceSpawned = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                attempt: r.attempt,
                power_state: r.power_state,
            })
        }
        "SpawnFailed" => {
            let r: pb::SpawnFailed = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::SpawnFailed {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                attempt: r.attempt,
                reason: r.reason,
                usage: usage(r.usage),
            })
        }
        "InstanceDestroyed" => {
            let r: pb::InstanceDestroyed = parse(type_name, bytes)?;
            Event::ComputeFact(ComputeFact::InstanceDestroyed {
                instance_id: uuid("instance_id", &r.instance_id)?,
                host: nonempty("host", r.host)?,
                usage: usage(r.usage),
            })
        }
        "HostRegistered" => {
            let h: pb::HostRegistered = parse(type_name, bytes)?;
            Event::Host(HostEvent::HostRegistered(Box::new(
                events::HostRegistered {
                    host: nonempty("host", h.host)?,
                    capacity: req("capacity", h.capacity)?.into(),
                    usage: usage(h.usage),
                    cpu_arch: h.cpu_arch,
                    hypervisor_type: h.hypervisor_type,
                    hypervisor_version: h.hypervisor_version,
                    availability_zone: h.availability_zone,
                    capabilities: h.capabilities,
                    driver: h.driver,
                },
            )))
        }
        "HostHeartbeat" => {
            let r: pb::HostHeartbeat = parse(type_name, bytes)?;
            Event::Host(HostEvent::HostHeartbeat {
                host: nonempty("host", r.host)?,
                usage: usage(r.usage),
            })
        }
        "FlavorCreated" => {
            let r: pb::FlavorCreated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::FlavorCreated(flavor(r.flavor)?))
        }
        "ImageCreated" => {
            let r: pb::ImageCreated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::ImageCreated(image(r.image)?))
        }
        "ImageUpdated" => {
            let r: pb::ImageUpdated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::ImageUpdated(image(r.image)?))
        }
        "ImageDeleted" => {
            let r: pb::ImageDeleted = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::ImageDeleted {
                image_id: uuid("image_id", &r.image_id)?,
            })
        }
        "ServerGroupCreated" => {
            let r: pb::ServerGroupCreated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::ServerGroupCreated(group_from_pb(r.group)?))
        }
        "ServerGroupDeleted" => {
            let r: pb::ServerGroupDeleted = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::ServerGroupDeleted {
                group_id: uuid("group_id", &r.group_id)?,
            })
        }
        "AggregateCreated" => {
            let r: pb::AggregateCreated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::AggregateCreated(aggregate_from_pb(
                r.aggregate,
            )?))
        }
        "AggregateUpdated" => {
            let r: pb::AggregateUpdated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::AggregateUpdated(aggregate_from_pb(
                r.aggregate,
            )?))
        }
        "AggregateHostAdded" => {
            let r: pb::AggregateHostAdded = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::AggregateHostAdded {
                aggregate: aggregate_from_pb(r.aggregate)?,
                host: nonempty("host", r.host)?,
            })
        }
        "AggregateHostRemoved" => {
            let r: pb::AggregateHostRemoved = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::AggregateHostRemoved {
                aggregate: aggregate_from_pb(r.aggregate)?,
                host: nonempty("host", r.host)?,
            })
        }
        "AggregateMetadataSet" => {
            let r: pb::AggregateMetadataSet = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::AggregateMetadataSet(aggregate_from_pb(
                r.aggregate,
            )?))
        }
        "AggregateDeleted" => {
            let r: pb::AggregateDeleted = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::AggregateDeleted {
                aggregate_id: r.aggregate_id,
            })
        }
        "KeypairCreateRequested" => {
            let r: pb::KeypairCreateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::KeypairCreateRequested(keypair_from_pb(r.keypair)?))
        }
        "KeypairDeleteRequested" => {
            let r: pb::KeypairDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::KeypairDeleteRequested {
                user_id: nonempty("user_id", r.user_id)?,
                name: nonempty("name", r.name)?,
            })
        }
        "KeypairCreated" => {
            let r: pb::KeypairCreated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::KeypairCreated(keypair_from_pb(r.keypair)?))
        }
        "KeypairDeleted" => {
            let r: pb::KeypairDeleted = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::KeypairDeleted {
                user_id: nonempty("user_id", r.user_id)?,
                name: nonempty("name", r.name)?,
            })
        }
        "FlavorUpdateRequested" => {
            let r: pb::FlavorUpdateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::FlavorUpdateRequested(Box::new(
                events::FlavorUpdate {
                    flavor_id: nonempty("flavor_id", r.flavor_id)?,
                    extra_specs_set: r.extra_specs_set.into_iter().collect(),
                    extra_specs_unset: r.extra_specs_unset,
                    description: r.set_description.then_some(r.description),
                },
            )))
        }
        "FlavorUpdated" => {
            let r: pb::FlavorUpdated = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::FlavorUpdated(flavor(r.flavor)?))
        }
        "FlavorDeleteRequested" => {
            let r: pb::FlavorDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::FlavorDeleteRequested {
                flavor_id: nonempty("flavor_id", r.flavor_id)?,
            })
        }
        "FlavorDeleted" => {
            let r: pb::FlavorDeleted = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::FlavorDeleted {
                flavor_id: nonempty("flavor_id", r.flavor_id)?,
            })
        }
        "FlavorAccessChangeRequested" => {
            let r: pb::FlavorAccessChangeRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::FlavorAccessChangeRequested {
                flavor_id: nonempty("flavor_id", r.flavor_id)?,
                project_id: nonempty("project_id", r.project_id)?,
                add: r.add,
            })
        }
        "FlavorAccessAdded" => {
            let r: pb::FlavorAccessAdded = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::FlavorAccessAdded {
                flavor_id: nonempty("flavor_id", r.flavor_id)?,
                project_id: nonempty("project_id", r.project_id)?,
            })
        }
        "FlavorAccessRemoved" => {
            let r: pb::FlavorAccessRemoved = parse(type_name, bytes)?;
            Event::Catalog(CatalogEvent::FlavorAccessRemoved {
                flavor_id: nonempty("flavor_id", r.flavor_id)?,
                project_id: nonempty("project_id", r.project_id)?,
            })
        }
        "ServiceUpdateRequested" => {
            let r: pb::ServiceUpdateRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServiceUpdateRequested(service_from_pb(r.status)?))
        }
        "ServiceUpdated" => {
            let r: pb::ServiceUpdated = parse(type_name, bytes)?;
            Event::Host(HostEvent::ServiceUpdated(service_from_pb(r.status)?))
        }
        "ServiceChangeRequested" => {
            let r: pb::ServiceChangeRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServiceChangeRequested(Box::new(
                events::ServiceChange {
                    host: nonempty("host", r.host)?,
                    disabled: r.disabled,
                    disabled_reason: r.change_disabled_reason.then_some(r.disabled_reason),
                    forced_down: r.forced_down,
                    seen: *service_from_pb(r.seen)?,
                },
            )))
        }
        "ServiceDeleteRequested" => {
            let r: pb::ServiceDeleteRequested = parse(type_name, bytes)?;
            Event::Intent(Intent::ServiceDeleteRequested {
                host: nonempty("host", r.host)?,
            })
        }
        "ServiceDeleted" => {
            let r: pb::ServiceDeleted = parse(type_name, bytes)?;
            Event::Host(HostEvent::ServiceDeleted {
                host: nonempty("host", r.host)?,
            })
        }
        "DeadLetter" => {
            let d: pb::DeadLetter = parse(type_name, bytes)?;
            Event::DeadLetter(Box::new(events::DeadLetter {
                source_topic: d.source_topic,
                partition: d.partition,
                offset: d.offset,
                consumer: d.consumer,
                error: d.error,
                key: d.key,
                value: d.value,
            }))
        }
        other => match crate::convert_saga::event(other, bytes) {
            Some(event) => event?,
            None => return Err(DecodeError::UnknownType(other.to_owned())),
        },
    })
}

pub(crate) fn encode_envelope(env: &Envelope) -> Vec<u8> {
    let m = &env.meta;
    pb::Envelope {
        event_id: m.event_id.to_string(),
        r#type: env.event.type_name().to_owned(),
        schema_version: m.schema_version,
        occurred_at_ms: m.occurred_at_ms,
        correlation_id: m.correlation_id.clone(),
        causation_id: m.causation_id.map(|c| c.to_string()).unwrap_or_default(),
        actor: Some(pb::Actor {
            user_id: m.actor.user_id.clone(),
            project_id: m.actor.project_id.clone(),
            roles: m.actor.roles.clone(),
        }),
        aggregate_id: m.aggregate_id.clone(),
        aggregate_version: m.aggregate_version,
        payload: payload(&env.event),
    }
    .encode_to_vec()
}

pub(crate) fn decode_envelope(bytes: &[u8]) -> R<Envelope> {
    let e: pb::Envelope = parse("Envelope", bytes)?;
    if e.schema_version == 0 || e.schema_version > SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            type_name: e.r#type,
            version: e.schema_version,
        });
    }
    let (meta, type_name, payload) = envelope_meta(e)?;
    let event = event(&type_name, &payload)?;
    Ok(Envelope { meta, event })
}

pub(crate) fn decode_meta(bytes: &[u8]) -> R<(Meta, String)> {
    let e: pb::Envelope = parse("Envelope", bytes)?;
    let (meta, type_name, _) = envelope_meta(e)?;
    Ok((meta, type_name))
}

/// The metadata, type name and raw payload of a parsed envelope.
fn envelope_meta(e: pb::Envelope) -> R<(Meta, String, Vec<u8>)> {
    let actor = e.actor.unwrap_or_default();
    let meta = Meta {
        event_id: uuid("event_id", &e.event_id)?,
        schema_version: e.schema_version,
        occurred_at_ms: e.occurred_at_ms,
        correlation_id: e.correlation_id,
        causation_id: if e.causation_id.is_empty() {
            None
        } else {
            Some(uuid("causation_id", &e.causation_id)?)
        },
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
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sample_flavor() -> Flavor {
        Flavor {
            id: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            extra_specs: BTreeMap::from([("hw:cpu_policy".into(), "shared".into())]),
            description: None,
        }
    }

    fn sample_image() -> Image {
        Image {
            id: Uuid::new_v4(),
            name: "cirros".into(),
            status: "active".into(),
            size: 1024,
            min_disk: 0,
            min_ram: 0,
            disk_format: "qcow2".into(),
            container_format: "bare".into(),
            properties: BTreeMap::from([("architecture".into(), "x86_64".into())]),
            owner: "admin".into(),
            checksum: "abc".into(),
            visibility: "public".into(),
            created_at_ms: 7,
            protected: true,
            tags: vec!["t".into()],
            os_hash_value: "def".into(),
            updated_at_ms: 8,
        }
    }

    fn envelope(event: Event) -> Envelope {
        Envelope {
            meta: Meta {
                event_id: Uuid::new_v4(),
                schema_version: SCHEMA_VERSION,
                occurred_at_ms: 1,
                correlation_id: "req-1".into(),
                causation_id: Some(Uuid::new_v4()),
                actor: Actor {
                    user_id: "u".into(),
                    project_id: "p".into(),
                    roles: vec!["member".into()],
                },
                aggregate_id: "a".into(),
                aggregate_version: 3,
            },
            event,
        }
    }

    fn sample_aggregate() -> events::HostAggregate {
        events::HostAggregate {
            id: 3,
            uuid: Uuid::new_v4(),
            name: "rack-1".into(),
            hosts: vec!["h1".into(), "h2".into()],
            metadata: BTreeMap::from([("availability_zone".into(), "az1".into())]),
            created_at_ms: 1,
            updated_at_ms: 2,
        }
    }

    fn sample_group() -> events::ServerGroup {
        events::ServerGroup {
            id: Uuid::new_v4(),
            name: "g".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            policy: events::ServerGroupPolicy::AntiAffinity,
            max_server_per_host: Some(2),
            created_at_ms: 7,
        }
    }

    fn sample_keypair() -> events::Keypair {
        events::Keypair {
            name: "k".into(),
            user_id: "u".into(),
            project_id: "p".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "aa:bb".into(),
            key_type: "ssh".into(),
            created_at_ms: 7,
            id: 3,
        }
    }

    #[test]
    fn every_event_round_trips() {
        let id = Uuid::new_v4();
        let usage = HostUsage {
            vcpus_used: 1,
            memory_mb_used: 2,
            disk_gb_used: 3,
            instances: 4,
            generation: 5,
        };
        let events = vec![
            Event::Intent(Intent::ServerCreateRequested(Box::new(
                events::ServerCreateRequested {
                    instance_id: id,
                    name: "vm".into(),
                    flavor: sample_flavor(),
                    image: sample_image(),
                    metadata: BTreeMap::from([("k".into(), "v".into())]),
                    availability_zone: Some("nova".into()),
                    key_name: None,
                    user_data: None,
                    description: Some("d".into()),
                    tags: vec!["t".into()],
                    reservation_id: "r-1".into(),
                    launch_index: 2,
                    scheduler_hints: BTreeMap::from([("group".into(), vec![id.to_string()])]),
                    min_count: 2,
                    max_count: 3,
                },
            ))),
            Event::Intent(Intent::ServerGroupCreateRequested(Box::new(sample_group()))),
            Event::Catalog(CatalogEvent::ServerGroupCreated(Box::new(
                events::ServerGroup {
                    max_server_per_host: None,
                    ..sample_group()
                },
            ))),
            Event::Intent(Intent::ServerGroupDeleteRequested { group_id: id }),
            Event::Catalog(CatalogEvent::ServerGroupDeleted { group_id: id }),
            Event::Intent(Intent::AggregateCreateRequested(Box::new(
                sample_aggregate(),
            ))),
            Event::Intent(Intent::AggregateUpdateRequested {
                aggregate_id: 3,
                name: Some("n".into()),
                availability_zone: None,
            }),
            Event::Intent(Intent::AggregateDeleteRequested { aggregate_id: 3 }),
            Event::Intent(Intent::AggregateHostAddRequested {
                aggregate_id: 3,
                host: "h".into(),
            }),
            Event::Intent(Intent::AggregateHostRemoveRequested {
                aggregate_id: 3,
                host: "h".into(),
            }),
            Event::Intent(Intent::AggregateMetadataSetRequested {
                aggregate_id: 3,
                metadata: BTreeMap::from([("a".into(), Some("1".into())), ("b".into(), None)]),
            }),
            Event::Catalog(CatalogEvent::AggregateCreated(Box::new(sample_aggregate()))),
            Event::Catalog(CatalogEvent::AggregateUpdated(Box::new(sample_aggregate()))),
            Event::Catalog(CatalogEvent::AggregateHostAdded {
                aggregate: Box::new(sample_aggregate()),
                host: "h".into(),
            }),
            Event::Catalog(CatalogEvent::AggregateHostRemoved {
                aggregate: Box::new(sample_aggregate()),
                host: "h".into(),
            }),
            Event::Catalog(CatalogEvent::AggregateMetadataSet(Box::new(
                sample_aggregate(),
            ))),
            Event::Catalog(CatalogEvent::AggregateDeleted { aggregate_id: 3 }),
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: id,
                force: true,
            }),
            Event::Intent(Intent::FlavorCreateRequested(sample_flavor())),
            Event::Intent(Intent::ImageCreateRequested(sample_image())),
            Event::Intent(Intent::ImageUpdateRequested(sample_image())),
            Event::Intent(Intent::ImageDeleteRequested { image_id: id }),
            Event::Intent(Intent::ImagePatchRequested(Box::new(
                crate::image::ImagePatch {
                    image_id: id,
                    ops: vec![
                        crate::image::PatchOp {
                            verb: crate::image::PatchVerb::Add,
                            attribute: "tags".into(),
                            value: Some(serde_json::json!(["a", "b"])),
                        },
                        crate::image::PatchOp {
                            verb: crate::image::PatchVerb::Remove,
                            attribute: "k".into(),
                            value: None,
                        },
                    ],
                },
            ))),
            Event::Intent(Intent::ImageUploadRequested { image_id: id }),
            Event::Intent(Intent::ImageUploadFinishRequested(Box::new(
                crate::image::ImageData {
                    image_id: id,
                    size: 3,
                    checksum: "c".into(),
                    os_hash_value: "h".into(),
                },
            ))),
            Event::Intent(Intent::ImageUploadAbortRequested { image_id: id }),
            Event::Catalog(CatalogEvent::ImageUpdated(sample_image())),
            Event::Catalog(CatalogEvent::ImageDeleted { image_id: id }),
            Event::Instance(InstanceEvent::IntentRejected {
                intent_type: "ServerCreateRequested".into(),
                kind: RejectionKind::Conflict,
                message: "no".into(),
            }),
            Event::Instance(InstanceEvent::IntentRejected {
                intent_type: "ServerRebootRequested".into(),
                kind: RejectionKind::InvalidState {
                    attribute: "vm_state".into(),
                    state: "stopped".into(),
                    method: "reboot".into(),
                },
                message: "no".into(),
            }),
            Event::Instance(InstanceEvent::IntentRejected {
                intent_type: "QuotaSetRequested".into(),
                kind: RejectionKind::OverQuota,
                message: "no".into(),
            }),
            Event::Instance(InstanceEvent::InstanceScheduled {
                host: "h".into(),
                alternates: vec!["a".into()],
                attempt: 1,
            }),
            Event::Instance(InstanceEvent::InstanceBecameActive {
                power_state: 1,
                launched_at_ms: 9,
            }),
            Event::Instance(InstanceEvent::InstanceFailed {
                fault: Fault {
                    code: 500,
                    message: "No valid host was found.".into(),
                    details: "".into(),
                    created_at_ms: 1,
                },
            }),
            Event::Instance(InstanceEvent::InstanceDeleteStarted),
            Event::Intent(Intent::ServerActionRequested {
                instance_id: id,
                action: ServerAction::Reboot { hard: true },
            }),
            Event::Intent(Intent::ServerActionRequested {
                instance_id: id,
                action: ServerAction::Lock {
                    reason: Some("maintenance".into()),
                },
            }),
            Event::Intent(Intent::ServerActionRequested {
                instance_id: id,
                action: ServerAction::Lock { reason: None },
            }),
            Event::Instance(InstanceEvent::InstanceTaskStarted {
                action: ServerAction::Stop,
                task_state: TaskState::PoweringOff,
            }),
            Event::Instance(InstanceEvent::InstanceTaskCompleted {
                action: ServerAction::Suspend,
                vm_state: VmState::Suspended,
                power_state: 7,
            }),
            Event::Instance(InstanceEvent::InstanceTaskFailed {
                action: ServerAction::Reboot { hard: false },
                vm_state: VmState::Error,
                power_state: 4,
                fault: Fault {
                    code: 500,
                    message: "boom".into(),
                    details: "trace".into(),
                    created_at_ms: 3,
                },
            }),
            Event::Instance(InstanceEvent::InstanceLocked {
                locked_by: "admin".into(),
                reason: Some("why".into()),
            }),
            Event::Instance(InstanceEvent::InstanceUnlocked),
            Event::Intent(Intent::QuotaSetRequested {
                project_id: "p".into(),
                limits: BTreeMap::from([("instances".into(), -1), ("cores".into(), 4)]),
                force: true,
            }),
            Event::Intent(Intent::QuotaResetRequested {
                project_id: "p".into(),
            }),
            Event::Catalog(CatalogEvent::QuotaSetUpdated {
                project_id: "p".into(),
                limits: BTreeMap::from([("ram".into(), 1024)]),
            }),
            Event::Catalog(CatalogEvent::QuotaSetDeleted {
                project_id: "p".into(),
            }),
            Event::Catalog(CatalogEvent::TokenRevoked {
                audit_id: "aud1t".into(),
                expires_at_ms: 1_700_000_000_000,
            }),
            Event::Intent(Intent::ServerUpdateRequested {
                instance_id: id,
                name: Some("n".into()),
                description: Some(None),
            }),
            Event::Intent(Intent::ServerUpdateRequested {
                instance_id: id,
                name: None,
                description: Some(Some("d".into())),
            }),
            Event::Intent(Intent::ServerUpdateRequested {
                instance_id: id,
                name: None,
                description: None,
            }),
            Event::Intent(Intent::ServerMetadataChangeRequested {
                instance_id: id,
                replace_all: true,
                set: BTreeMap::from([("a".into(), "1".into())]),
                remove: vec!["b".into()],
            }),
            Event::Intent(Intent::ServerTagsChangeRequested {
                instance_id: id,
                replace_all: false,
                add: vec!["t".into()],
                remove: vec!["u".into()],
            }),
            Event::Instance(InstanceEvent::InstanceUpdated {
                name: "n".into(),
                description: None,
            }),
            Event::Instance(InstanceEvent::InstanceMetadataSet {
                metadata: BTreeMap::from([("a".into(), "".into())]),
            }),
            Event::Instance(InstanceEvent::InstanceTagsSet {
                tags: vec!["x".into(), "y".into()],
            }),
            Event::Compute(ComputeCommand::PerformServerAction {
                instance_id: id,
                host: "h".into(),
                action: ServerAction::Unpause,
            }),
            Event::ComputeFact(ComputeFact::ServerActionPerformed {
                instance_id: id,
                host: "h".into(),
                action: ServerAction::Start,
                power_state: 1,
            }),
            Event::ComputeFact(ComputeFact::ServerActionFailed {
                instance_id: id,
                host: "h".into(),
                action: ServerAction::Resume,
                reason: "no".into(),
                power_state: 7,
            }),
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
                events::SelectHostsRequested {
                    request_id: id,
                    instance_id: id,
                    project_id: "p".into(),
                    resources: Resources {
                        vcpus: 2,
                        memory_mb: 2048,
                        disk_gb: 20,
                    },
                    image_properties: BTreeMap::from([("architecture".into(), "x86_64".into())]),
                    extra_specs: BTreeMap::from([(
                        "capabilities:hypervisor_type".into(),
                        "s== fake".into(),
                    )]),
                    availability_zone: Some("nova".into()),
                    ignore_hosts: vec!["h0".into()],
                    num_alternates: 2,
                    scheduler_hints: BTreeMap::from([
                        ("same_host".into(), vec![id.to_string()]),
                        (
                            "query".into(),
                            vec![r#"[">=", "$free_ram_mb", 1024]"#.into()],
                        ),
                    ]),
                    server_group: Some(events::ServerGroupSpec {
                        id: Uuid::new_v4(),
                        policy: events::ServerGroupPolicy::AntiAffinity,
                        max_server_per_host: Some(2),
                        hosts: vec!["h1".into()],
                        members: vec![id],
                    }),
                    image_id: Some(Uuid::new_v4()),
                    flavor_name: "m1.small".into(),
                },
            ))),
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
                events::SelectHostsRequested {
                    request_id: id,
                    instance_id: id,
                    project_id: "p".into(),
                    resources: Resources::default(),
                    image_properties: BTreeMap::new(),
                    extra_specs: BTreeMap::new(),
                    availability_zone: None,
                    ignore_hosts: Vec::new(),
                    num_alternates: 0,
                    scheduler_hints: BTreeMap::new(),
                    server_group: Some(events::ServerGroupSpec {
                        id: Uuid::new_v4(),
                        policy: events::ServerGroupPolicy::SoftAffinity,
                        max_server_per_host: None,
                        hosts: Vec::new(),
                        members: Vec::new(),
                    }),
                    image_id: None,
                    flavor_name: String::new(),
                },
            ))),
            Event::Scheduler(SchedulerEvent::HostsSelected {
                request_id: id,
                instance_id: id,
                hosts: vec!["h1".into(), "h2".into()],
            }),
            Event::ComputeFact(ComputeFact::ClaimFailed {
                instance_id: id,
                host: "h".into(),
                attempt: 2,
                reason: "full".into(),
                usage,
            }),
            Event::ComputeFact(ComputeFact::InstanceDestroyed {
                instance_id: id,
                host: "h".into(),
                usage,
            }),
            Event::Host(HostEvent::HostHeartbeat {
                host: "h".into(),
                usage,
            }),
            Event::Catalog(CatalogEvent::FlavorCreated(sample_flavor())),
            Event::Intent(Intent::KeypairCreateRequested(Box::new(sample_keypair()))),
            Event::Catalog(CatalogEvent::KeypairCreated(Box::new(sample_keypair()))),
            Event::Intent(Intent::KeypairDeleteRequested {
                user_id: "u".into(),
                name: "k".into(),
            }),
            Event::Catalog(CatalogEvent::KeypairDeleted {
                user_id: "u".into(),
                name: "k".into(),
            }),
            Event::Intent(Intent::ServiceUpdateRequested(Box::new(
                events::ServiceStatus {
                    host: "h".into(),
                    disabled: true,
                    disabled_reason: Some("maintenance".into()),
                    forced_down: false,
                },
            ))),
            Event::Host(HostEvent::ServiceUpdated(Box::new(events::ServiceStatus {
                host: "h".into(),
                disabled: false,
                disabled_reason: None,
                forced_down: true,
            }))),
            Event::Intent(Intent::ServiceChangeRequested(Box::new(
                events::ServiceChange {
                    host: "h".into(),
                    disabled: Some(true),
                    disabled_reason: Some(None),
                    forced_down: None,
                    seen: events::ServiceStatus {
                        host: "h".into(),
                        disabled: false,
                        disabled_reason: Some("old".into()),
                        forced_down: true,
                    },
                },
            ))),
            Event::Intent(Intent::ServiceDeleteRequested { host: "h".into() }),
            Event::Intent(Intent::FlavorUpdateRequested(Box::new(
                events::FlavorUpdate {
                    flavor_id: "1".into(),
                    extra_specs_set: BTreeMap::from([("hw:cpu_policy".into(), "dedicated".into())]),
                    extra_specs_unset: vec!["k".into()],
                    description: Some(None),
                },
            ))),
            Event::Intent(Intent::FlavorUpdateRequested(Box::new(
                events::FlavorUpdate {
                    flavor_id: "1".into(),
                    description: Some(Some("d".into())),
                    ..Default::default()
                },
            ))),
            Event::Intent(Intent::FlavorUpdateRequested(Box::new(
                events::FlavorUpdate {
                    flavor_id: "1".into(),
                    ..Default::default()
                },
            ))),
            Event::Catalog(CatalogEvent::FlavorUpdated(sample_flavor())),
            Event::Intent(Intent::FlavorDeleteRequested {
                flavor_id: "1".into(),
            }),
            Event::Catalog(CatalogEvent::FlavorDeleted {
                flavor_id: "1".into(),
            }),
            Event::Intent(Intent::FlavorAccessChangeRequested {
                flavor_id: "1".into(),
                project_id: "p".into(),
                add: true,
            }),
            Event::Catalog(CatalogEvent::FlavorAccessAdded {
                flavor_id: "1".into(),
                project_id: "p".into(),
            }),
            Event::Catalog(CatalogEvent::FlavorAccessRemoved {
                flavor_id: "1".into(),
                project_id: "p".into(),
            }),
            Event::Host(HostEvent::ServiceDeleted { host: "h".into() }),
        ];
        for e in events {
            let env = envelope(e);
            let back = decode_envelope(&encode_envelope(&env)).unwrap();
            assert_eq!(back, env);
        }
    }

    /// A rejection as the conductor wrote it before kinds existed: only
    /// the HTTP status it chose, in `code`.
    fn old_rejection(code: i32) -> Event {
        let mut raw = pb::Envelope::decode(
            &encode_envelope(&envelope(Event::Instance(InstanceEvent::IntentRejected {
                intent_type: "ServerRebootRequested".into(),
                kind: RejectionKind::Internal,
                message: "m".into(),
            })))[..],
        )
        .unwrap();
        raw.payload = pb::IntentRejected {
            intent_type: "ServerRebootRequested".into(),
            code,
            message: "m".into(),
            ..Default::default()
        }
        .encode_to_vec();
        decode_envelope(&raw.encode_to_vec()).unwrap().event
    }

    #[test]
    fn an_old_rejection_with_a_code_decodes_to_its_kind() {
        for (code, kind) in [
            (400, RejectionKind::Invalid),
            (403, RejectionKind::Forbidden),
            (404, RejectionKind::NotFound),
            (409, RejectionKind::Conflict),
            (410, RejectionKind::Gone),
            (413, RejectionKind::OverLimit),
            (500, RejectionKind::Internal),
            (0, RejectionKind::Internal),
        ] {
            assert_eq!(
                old_rejection(code),
                Event::Instance(InstanceEvent::IntentRejected {
                    intent_type: "ServerRebootRequested".into(),
                    kind,
                    message: "m".into(),
                }),
                "code {code}"
            );
        }
    }

    #[test]
    fn a_new_rejection_carries_its_kind_not_a_code() {
        let env = envelope(Event::Instance(InstanceEvent::IntentRejected {
            intent_type: "ServerRebootRequested".into(),
            kind: RejectionKind::OverQuota,
            message: "m".into(),
        }));
        let raw = pb::Envelope::decode(&encode_envelope(&env)[..]).unwrap();
        let r = pb::IntentRejected::decode(&raw.payload[..]).unwrap();
        assert_eq!(r.code, 0);
        assert_eq!(r.kind, i32::from(pb::RejectionKind::OverQuota));
    }

    #[test]
    fn an_invalid_state_rejection_without_its_fields_is_an_error() {
        let mut raw = pb::Envelope::decode(
            &encode_envelope(&envelope(Event::Instance(InstanceEvent::IntentRejected {
                intent_type: "ServerRebootRequested".into(),
                kind: RejectionKind::Internal,
                message: "m".into(),
            })))[..],
        )
        .unwrap();
        raw.payload = pb::IntentRejected {
            kind: pb::RejectionKind::InvalidState.into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            decode_envelope(&raw.encode_to_vec()),
            Err(DecodeError::Missing("intent_rejected.invalid_state"))
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            decode_envelope(b"\xff\xff\xff\xff"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn records_written_under_the_old_progressive_names_still_decode() {
        let p = || Box::new(crate::migration::MigrationProgress::of(Uuid::from_u128(7)));
        let renamed = [
            ("InstanceDeleting", InstanceEvent::InstanceDeleteStarted),
            (
                "ResizeMigrating",
                InstanceEvent::ResizeMigrationStarted(p()),
            ),
            ("ResizeFinishing", InstanceEvent::ResizeFinishStarted(p())),
            ("ResizeConfirming", InstanceEvent::ResizeConfirmStarted(p())),
            ("ResizeReverting", InstanceEvent::ResizeRevertStarted(p())),
            (
                "LiveMigrationRunning",
                InstanceEvent::LiveMigrationStarted(p()),
            ),
            ("RebuildSpawning", InstanceEvent::RebuildSpawnBegan),
        ];
        for (old, event) in renamed {
            let event = Event::Instance(event);
            let mut raw =
                pb::Envelope::decode(&encode_envelope(&envelope(event.clone()))[..]).unwrap();
            assert_ne!(raw.r#type, old, "written under its new name");
            raw.r#type = old.into();
            assert_eq!(decode_envelope(&raw.encode_to_vec()).unwrap().event, event);
        }
    }

    #[test]
    fn unknown_type_and_future_version_are_rejected() {
        let mut raw = pb::Envelope::decode(
            &encode_envelope(&envelope(Event::Instance(
                InstanceEvent::InstanceDeleteStarted,
            )))[..],
        )
        .unwrap();
        raw.r#type = "SomethingNew".into();
        assert_eq!(
            decode_envelope(&raw.encode_to_vec()),
            Err(DecodeError::UnknownType("SomethingNew".into()))
        );
        raw.r#type = "InstanceDeleting".into();
        raw.schema_version = SCHEMA_VERSION + 1;
        assert!(matches!(
            decode_envelope(&raw.encode_to_vec()),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn invalid_ids_are_rejected() {
        let mut raw = pb::Envelope::decode(
            &encode_envelope(&envelope(Event::Intent(Intent::ServerDeleteRequested {
                instance_id: Uuid::new_v4(),
                force: false,
            })))[..],
        )
        .unwrap();
        raw.payload = pb::ServerDeleteRequested {
            instance_id: "not-a-uuid".into(),
            force: false,
        }
        .encode_to_vec();
        assert!(matches!(
            decode_envelope(&raw.encode_to_vec()),
            Err(DecodeError::Invalid {
                field: "instance_id",
                ..
            })
        ));
    }
}
