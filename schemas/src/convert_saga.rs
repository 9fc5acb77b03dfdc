//! Protobuf conversions of the saga records (`proto/saga.proto`), kept
//! apart from `convert.rs` so each flow's wire code sits in one place.

use prost::Message;
use uuid::Uuid;

use crate::envelope::DecodeError;
use crate::events::{ComputeCommand, ComputeFact, Event, InstanceEvent, Intent};
use crate::migration::{
    Migration, MigrationCommand, MigrationFact, MigrationProgress, MigrationStatus, MigrationType,
    RebuildSpec, ServerMigrationRequested, ServerRebuildRequested, parse_vm_state,
};
use crate::pb;
use crate::state::PowerState;

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

fn parse<M: Message + Default>(type_name: &str, bytes: &[u8]) -> R<M> {
    M::decode(bytes).map_err(|e| DecodeError::Malformed {
        what: type_name.to_owned(),
        message: e.to_string(),
    })
}

fn flavor(f: Option<pb::Flavor>, field: &'static str) -> R<crate::Flavor> {
    f.ok_or(DecodeError::Missing(field))?.try_into()
}

fn image(i: Option<pb::Image>, field: &'static str) -> R<crate::Image> {
    i.ok_or(DecodeError::Missing(field))?.try_into()
}

fn migration_type(s: &str) -> R<MigrationType> {
    MigrationType::parse(s).ok_or_else(|| DecodeError::Invalid {
        field: "migration_type",
        message: format!("unknown migration type {s:?}"),
    })
}

fn vm_state(field: &'static str, s: &str) -> R<crate::VmState> {
    parse_vm_state(s).ok_or_else(|| DecodeError::Invalid {
        field,
        message: format!("unknown vm_state {s:?}"),
    })
}

fn migration_to_pb(m: Migration) -> pb::MigrationRecord {
    pb::MigrationRecord {
        id: m.id,
        uuid: m.uuid.to_string(),
        migration_type: m.migration_type.as_str().to_owned(),
        status: m.status.as_str().to_owned(),
        source_compute: m.source_compute,
        dest_compute: m.dest_compute.unwrap_or_default(),
        old_flavor: Some(m.old_flavor.into()),
        new_flavor: Some(m.new_flavor.into()),
        created_at_ms: m.created_at_ms,
        updated_at_ms: m.updated_at_ms,
        alternates: m.alternates,
        attempt: m.attempt,
        original_vm_state: m.original_vm_state.as_str().to_owned(),
        original_power_state: m.original_power_state.code(),
        requested_host: m.requested_host.unwrap_or_default(),
        project_id: m.project_id,
        user_id: m.user_id,
    }
}

fn migration_from_pb(m: pb::MigrationRecord) -> R<Migration> {
    Ok(Migration {
        id: m.id,
        uuid: uuid("uuid", &m.uuid)?,
        migration_type: migration_type(&m.migration_type)?,
        status: MigrationStatus::parse(&m.status).ok_or_else(|| DecodeError::Invalid {
            field: "status",
            message: format!("unknown migration status {:?}", m.status),
        })?,
        source_compute: m.source_compute,
        dest_compute: opt(m.dest_compute),
        old_flavor: flavor(m.old_flavor, "old_flavor")?,
        new_flavor: flavor(m.new_flavor, "new_flavor")?,
        created_at_ms: m.created_at_ms,
        updated_at_ms: m.updated_at_ms,
        alternates: m.alternates,
        attempt: m.attempt,
        original_vm_state: vm_state("original_vm_state", &m.original_vm_state)?,
        original_power_state: PowerState::from_code(m.original_power_state)
            .unwrap_or(PowerState::NoState),
        requested_host: opt(m.requested_host),
        project_id: m.project_id,
        user_id: m.user_id,
    })
}

fn progress_to_pb(p: MigrationProgress) -> pb::MigrationProgress {
    pb::MigrationProgress {
        migration_id: p.migration_id.to_string(),
        power_state: p.power_state,
        host: p.host.unwrap_or_default(),
        alternates: p.alternates,
        attempt: p.attempt,
        fault: p.fault.map(Into::into),
    }
}

fn progress_from_pb(p: pb::MigrationProgress) -> R<Box<MigrationProgress>> {
    Ok(Box::new(MigrationProgress {
        migration_id: uuid("migration_id", &p.migration_id)?,
        power_state: p.power_state,
        host: opt(p.host),
        alternates: p.alternates,
        attempt: p.attempt,
        fault: p.fault.map(Into::into),
    }))
}

fn command_to_pb(c: MigrationCommand) -> pb::MigrationCommand {
    pb::MigrationCommand {
        instance_id: c.instance_id.to_string(),
        migration_id: c.migration_id.to_string(),
        host: c.host,
        source_host: c.source_host,
        dest_host: c.dest_host,
        attempt: c.attempt,
        flavor: Some(c.flavor.into()),
        image: Some(c.image.into()),
        name: c.name,
        project_id: c.project_id,
        power_on: c.power_on,
    }
}

fn command_from_pb(c: pb::MigrationCommand) -> R<Box<MigrationCommand>> {
    Ok(Box::new(MigrationCommand {
        instance_id: uuid("instance_id", &c.instance_id)?,
        migration_id: uuid("migration_id", &c.migration_id)?,
        host: c.host,
        source_host: c.source_host,
        dest_host: c.dest_host,
        attempt: c.attempt,
        flavor: flavor(c.flavor, "flavor")?,
        image: image(c.image, "image")?,
        name: c.name,
        project_id: c.project_id,
        power_on: c.power_on,
    }))
}

fn fact_to_pb(f: MigrationFact) -> pb::MigrationFact {
    pb::MigrationFact {
        instance_id: f.instance_id.to_string(),
        migration_id: f.migration_id.to_string(),
        host: f.host,
        attempt: f.attempt,
        power_state: f.power_state,
        step: f.step,
        reason: f.reason,
        usage: Some(f.usage.into()),
    }
}

fn fact_from_pb(f: pb::MigrationFact) -> R<Box<MigrationFact>> {
    Ok(Box::new(MigrationFact {
        instance_id: uuid("instance_id", &f.instance_id)?,
        migration_id: uuid("migration_id", &f.migration_id)?,
        host: f.host,
        attempt: f.attempt,
        power_state: f.power_state,
        step: f.step,
        reason: f.reason,
        usage: f.usage.map(Into::into).unwrap_or_default(),
    }))
}

/// The payload of a saga record; `None` for every other record.
pub(crate) fn payload(event: &Event) -> Option<Vec<u8>> {
    Some(match event.clone() {
        Event::Intent(Intent::ServerMigrationRequested(r)) => pb::ServerMigrationRequested {
            instance_id: r.instance_id.to_string(),
            migration_type: r.migration_type.as_str().to_owned(),
            flavor: r.flavor.map(Into::into),
            host: r.host.unwrap_or_default(),
            source_host_down: r.source_host_down,
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServerResizeConfirmRequested { instance_id })
        | Event::Intent(Intent::ServerResizeRevertRequested { instance_id }) => pb::InstanceRef {
            instance_id: instance_id.to_string(),
        }
        .encode_to_vec(),
        Event::Intent(Intent::ServerRebuildRequested(r)) => pb::ServerRebuildRequested {
            instance_id: r.instance_id.to_string(),
            image: Some(r.image.into()),
            name: r.name.unwrap_or_default(),
            replace_metadata: r.metadata.is_some(),
            metadata: r.metadata.unwrap_or_default(),
            set_key_name: r.key_name.is_some(),
            key_name: r.key_name.flatten(),
            set_user_data: r.user_data.is_some(),
            user_data: r.user_data.flatten(),
            set_description: r.description.is_some(),
            description: r.description.flatten(),
        }
        .encode_to_vec(),
        Event::Intent(Intent::SagaStepTimedOut {
            instance_id,
            step,
            deadline_ms,
        }) => pb::SagaStepTimedOut {
            instance_id: instance_id.to_string(),
            step,
            deadline_ms,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::MigrationStarted(m)) => migration_to_pb(*m).encode_to_vec(),
        Event::Instance(InstanceEvent::MigrationScheduled(p))
        | Event::Instance(InstanceEvent::ResizeMigrationStarted(p))
        | Event::Instance(InstanceEvent::ResizeMigrated(p))
        | Event::Instance(InstanceEvent::ResizeFinishStarted(p))
        | Event::Instance(InstanceEvent::ResizeFinished(p))
        | Event::Instance(InstanceEvent::ResizeConfirmStarted(p))
        | Event::Instance(InstanceEvent::ResizeConfirmed(p))
        | Event::Instance(InstanceEvent::ResizeRevertStarted(p))
        | Event::Instance(InstanceEvent::ResizeReverted(p))
        | Event::Instance(InstanceEvent::MigrationAborted(p))
        | Event::Instance(InstanceEvent::MigrationErrored(p))
        | Event::Instance(InstanceEvent::LiveMigrationStarted(p))
        | Event::Instance(InstanceEvent::LiveMigrated(p))
        | Event::Instance(InstanceEvent::Evacuated(p)) => progress_to_pb(*p).encode_to_vec(),
        Event::Instance(InstanceEvent::RebuildStarted(r)) => pb::RebuildStarted {
            image: Some(r.image.into()),
            name: r.name,
            metadata: r.metadata,
            key_name: r.key_name,
            user_data: r.user_data,
            description: r.description,
        }
        .encode_to_vec(),
        Event::Instance(InstanceEvent::RebuildSpawnBegan) => Vec::new(),
        Event::Instance(InstanceEvent::RebuildCompleted {
            vm_state,
            power_state,
        }) => pb::RebuildCompleted {
            vm_state: vm_state.as_str().to_owned(),
            power_state,
        }
        .encode_to_vec(),
        Event::Compute(ComputeCommand::PrepResize(c))
        | Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(c))
        | Event::Compute(ComputeCommand::FinishMigration(c))
        | Event::Compute(ComputeCommand::ConfirmMigration(c))
        | Event::Compute(ComputeCommand::RevertMigration(c))
        | Event::Compute(ComputeCommand::FinishRevertMigration(c))
        | Event::Compute(ComputeCommand::DropMigrationClaim(c))
        | Event::Compute(ComputeCommand::LiveMigrateInstance(c))
        | Event::Compute(ComputeCommand::RebuildInstance(c))
        | Event::Compute(ComputeCommand::RebuildEvacuatedInstance(c))
        | Event::Compute(ComputeCommand::CleanupEvacuatedInstance(c)) => {
            command_to_pb(*c).encode_to_vec()
        }
        Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(f))
        | Event::ComputeFact(ComputeFact::ResizeClaimFailed(f))
        | Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(f))
        | Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(f))
        | Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(f))
        | Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(f))
        | Event::ComputeFact(ComputeFact::RevertFinishedOnSource(f))
        | Event::ComputeFact(ComputeFact::InstanceLiveMigrated(f))
        | Event::ComputeFact(ComputeFact::RebuildSpawnStarted(f))
        | Event::ComputeFact(ComputeFact::InstanceRebuilt(f))
        | Event::ComputeFact(ComputeFact::EvacuatedInstanceCleanedUp(f))
        | Event::ComputeFact(ComputeFact::MigrationStepFailed(f)) => fact_to_pb(*f).encode_to_vec(),
        _ => return None,
    })
}

/// Decodes a saga record; `None` if `type_name` is not one.
pub(crate) fn event(type_name: &str, bytes: &[u8]) -> Option<R<Event>> {
    decode(type_name, bytes).transpose()
}

fn decode(t: &str, b: &[u8]) -> R<Option<Event>> {
    let progress = |b: &[u8]| -> R<Box<MigrationProgress>> { progress_from_pb(parse(t, b)?) };
    let command = |b: &[u8]| -> R<Box<MigrationCommand>> { command_from_pb(parse(t, b)?) };
    let fact = |b: &[u8]| -> R<Box<MigrationFact>> { fact_from_pb(parse(t, b)?) };
    Ok(Some(match t {
        "ServerMigrationRequested" => {
            let r: pb::ServerMigrationRequested = parse(t, b)?;
            Event::Intent(Intent::ServerMigrationRequested(Box::new(
                ServerMigrationRequested {
                    instance_id: uuid("instance_id", &r.instance_id)?,
                    migration_type: migration_type(&r.migration_type)?,
                    flavor: r.flavor.map(TryInto::try_into).transpose()?,
                    host: opt(r.host),
                    source_host_down: r.source_host_down,
                },
            )))
        }
        "ServerResizeConfirmRequested" => {
            let r: pb::InstanceRef = parse(t, b)?;
            Event::Intent(Intent::ServerResizeConfirmRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
            })
        }
        "ServerResizeRevertRequested" => {
            let r: pb::InstanceRef = parse(t, b)?;
            Event::Intent(Intent::ServerResizeRevertRequested {
                instance_id: uuid("instance_id", &r.instance_id)?,
            })
        }
        "ServerRebuildRequested" => {
            let r: pb::ServerRebuildRequested = parse(t, b)?;
            Event::Intent(Intent::ServerRebuildRequested(Box::new(
                ServerRebuildRequested {
                    instance_id: uuid("instance_id", &r.instance_id)?,
                    image: image(r.image, "image")?,
                    name: opt(r.name),
                    metadata: r.replace_metadata.then_some(r.metadata),
                    key_name: r.set_key_name.then_some(r.key_name),
                    user_data: r.set_user_data.then_some(r.user_data),
                    description: r.set_description.then_some(r.description),
                },
            )))
        }
        "SagaStepTimedOut" => {
            let r: pb::SagaStepTimedOut = parse(t, b)?;
            Event::Intent(Intent::SagaStepTimedOut {
                instance_id: uuid("instance_id", &r.instance_id)?,
                step: r.step,
                deadline_ms: r.deadline_ms,
            })
        }
        "MigrationStarted" => Event::Instance(InstanceEvent::MigrationStarted(Box::new(
            migration_from_pb(parse(t, b)?)?,
        ))),
        "MigrationScheduled" => Event::Instance(InstanceEvent::MigrationScheduled(progress(b)?)),
        "ResizeMigrationStarted" | "ResizeMigrating" => {
            Event::Instance(InstanceEvent::ResizeMigrationStarted(progress(b)?))
        }
        "ResizeMigrated" => Event::Instance(InstanceEvent::ResizeMigrated(progress(b)?)),
        "ResizeFinishStarted" | "ResizeFinishing" => {
            Event::Instance(InstanceEvent::ResizeFinishStarted(progress(b)?))
        }
        "ResizeFinished" => Event::Instance(InstanceEvent::ResizeFinished(progress(b)?)),
        "ResizeConfirmStarted" | "ResizeConfirming" => {
            Event::Instance(InstanceEvent::ResizeConfirmStarted(progress(b)?))
        }
        "ResizeConfirmed" => Event::Instance(InstanceEvent::ResizeConfirmed(progress(b)?)),
        "ResizeRevertStarted" | "ResizeReverting" => {
            Event::Instance(InstanceEvent::ResizeRevertStarted(progress(b)?))
        }
        "ResizeReverted" => Event::Instance(InstanceEvent::ResizeReverted(progress(b)?)),
        "MigrationAborted" => Event::Instance(InstanceEvent::MigrationAborted(progress(b)?)),
        "MigrationErrored" => Event::Instance(InstanceEvent::MigrationErrored(progress(b)?)),
        "LiveMigrationStarted" | "LiveMigrationRunning" => {
            Event::Instance(InstanceEvent::LiveMigrationStarted(progress(b)?))
        }
        "LiveMigrated" => Event::Instance(InstanceEvent::LiveMigrated(progress(b)?)),
        "Evacuated" => Event::Instance(InstanceEvent::Evacuated(progress(b)?)),
        "RebuildStarted" => {
            let r: pb::RebuildStarted = parse(t, b)?;
            Event::Instance(InstanceEvent::RebuildStarted(Box::new(RebuildSpec {
                image: image(r.image, "image")?,
                name: r.name,
                metadata: r.metadata,
                key_name: r.key_name,
                user_data: r.user_data,
                description: r.description,
            })))
        }
        "RebuildSpawnBegan" | "RebuildSpawning" => {
            Event::Instance(InstanceEvent::RebuildSpawnBegan)
        }
        "RebuildCompleted" => {
            let r: pb::RebuildCompleted = parse(t, b)?;
            Event::Instance(InstanceEvent::RebuildCompleted {
                vm_state: vm_state("vm_state", &r.vm_state)?,
                power_state: r.power_state,
            })
        }
        "PrepResize" => Event::Compute(ComputeCommand::PrepResize(command(b)?)),
        "MigrateDiskAndPowerOff" => {
            Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(command(b)?))
        }
        "FinishMigration" => Event::Compute(ComputeCommand::FinishMigration(command(b)?)),
        "ConfirmMigration" => Event::Compute(ComputeCommand::ConfirmMigration(command(b)?)),
        "RevertMigration" => Event::Compute(ComputeCommand::RevertMigration(command(b)?)),
        "FinishRevertMigration" => {
            Event::Compute(ComputeCommand::FinishRevertMigration(command(b)?))
        }
        "DropMigrationClaim" => Event::Compute(ComputeCommand::DropMigrationClaim(command(b)?)),
        "LiveMigrateInstance" => Event::Compute(ComputeCommand::LiveMigrateInstance(command(b)?)),
        "RebuildInstance" => Event::Compute(ComputeCommand::RebuildInstance(command(b)?)),
        "RebuildEvacuatedInstance" => {
            Event::Compute(ComputeCommand::RebuildEvacuatedInstance(command(b)?))
        }
        "CleanupEvacuatedInstance" => {
            Event::Compute(ComputeCommand::CleanupEvacuatedInstance(command(b)?))
        }
        "ResizeClaimSucceeded" => Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(fact(b)?)),
        "ResizeClaimFailed" => Event::ComputeFact(ComputeFact::ResizeClaimFailed(fact(b)?)),
        "DiskMigratedAndPoweredOff" => {
            Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(fact(b)?))
        }
        "MigrationFinishedOnDest" => {
            Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(fact(b)?))
        }
        "MigrationConfirmedOnSource" => {
            Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(fact(b)?))
        }
        "MigrationRevertedOnDest" => {
            Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(fact(b)?))
        }
        "RevertFinishedOnSource" => {
            Event::ComputeFact(ComputeFact::RevertFinishedOnSource(fact(b)?))
        }
        "InstanceLiveMigrated" => Event::ComputeFact(ComputeFact::InstanceLiveMigrated(fact(b)?)),
        "RebuildSpawnStarted" => Event::ComputeFact(ComputeFact::RebuildSpawnStarted(fact(b)?)),
        "InstanceRebuilt" => Event::ComputeFact(ComputeFact::InstanceRebuilt(fact(b)?)),
        "EvacuatedInstanceCleanedUp" => {
            Event::ComputeFact(ComputeFact::EvacuatedInstanceCleanedUp(fact(b)?))
        }
        "MigrationStepFailed" => Event::ComputeFact(ComputeFact::MigrationStepFailed(fact(b)?)),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::envelope::{Actor, Envelope, Meta, SCHEMA_VERSION};
    use crate::values::{Fault, Flavor, HostUsage, Image};

    fn flavor(id: &str) -> Flavor {
        Flavor {
            id: id.into(),
            name: format!("f{id}"),
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            rxtx_factor: 1.0,
            is_public: true,
            extra_specs: BTreeMap::new(),
            description: None,
        }
    }

    fn image() -> Image {
        Image {
            id: Uuid::from_u128(9),
            name: "cirros".into(),
            status: "active".into(),
            size: 1,
            min_disk: 0,
            min_ram: 0,
            disk_format: "qcow2".into(),
            container_format: "bare".into(),
            properties: BTreeMap::new(),
            owner: String::new(),
            checksum: String::new(),
            visibility: "public".into(),
            created_at_ms: 0,
            protected: false,
            tags: Vec::new(),
            os_hash_value: String::new(),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn every_saga_record_round_trips() {
        let id = Uuid::from_u128(1);
        let mid = Uuid::from_u128(2);
        let migration = Migration {
            id: 4,
            uuid: mid,
            migration_type: MigrationType::Resize,
            status: MigrationStatus::PreMigrating,
            source_compute: "h1".into(),
            dest_compute: Some("h2".into()),
            old_flavor: flavor("1"),
            new_flavor: flavor("2"),
            created_at_ms: 1,
            updated_at_ms: 2,
            alternates: vec!["h3".into()],
            attempt: 1,
            original_vm_state: crate::VmState::Stopped,
            original_power_state: PowerState::Shutdown,
            requested_host: Some("h2".into()),
            project_id: "p".into(),
            user_id: "u".into(),
        };
        let progress = MigrationProgress {
            migration_id: mid,
            power_state: 4,
            host: Some("h1".into()),
            alternates: vec!["h3".into()],
            attempt: 2,
            fault: Some(Fault {
                code: 500,
                message: "m".into(),
                details: "d".into(),
                created_at_ms: 3,
            }),
        };
        let command = MigrationCommand {
            instance_id: id,
            migration_id: mid,
            host: "h2".into(),
            source_host: "h1".into(),
            dest_host: "h2".into(),
            attempt: 1,
            flavor: flavor("2"),
            image: image(),
            name: "vm".into(),
            project_id: "p".into(),
            power_on: true,
        };
        let fact = MigrationFact {
            instance_id: id,
            migration_id: mid,
            host: "h2".into(),
            attempt: 1,
            power_state: 1,
            step: "finish_migration".into(),
            reason: "boom".into(),
            usage: HostUsage {
                vcpus_used: 1,
                memory_mb_used: 2,
                disk_gb_used: 3,
                instances: 4,
                generation: 5,
            },
        };
        let p = || Box::new(progress.clone());
        let c = || Box::new(command.clone());
        let f = || Box::new(fact.clone());
        let events = vec![
            Event::Intent(Intent::ServerMigrationRequested(Box::new(
                ServerMigrationRequested {
                    instance_id: id,
                    migration_type: MigrationType::Resize,
                    flavor: Some(flavor("2")),
                    host: Some("h2".into()),
                    source_host_down: true,
                },
            ))),
            Event::Intent(Intent::ServerMigrationRequested(Box::new(
                ServerMigrationRequested {
                    instance_id: id,
                    migration_type: MigrationType::Migration,
                    flavor: None,
                    host: None,
                    source_host_down: false,
                },
            ))),
            Event::Intent(Intent::ServerResizeConfirmRequested { instance_id: id }),
            Event::Intent(Intent::ServerResizeRevertRequested { instance_id: id }),
            Event::Intent(Intent::ServerRebuildRequested(Box::new(
                ServerRebuildRequested {
                    instance_id: id,
                    image: image(),
                    name: Some("new".into()),
                    metadata: Some(BTreeMap::from([("k".into(), "v".into())])),
                    key_name: Some(Some("key".into())),
                    user_data: Some(None),
                    description: None,
                },
            ))),
            Event::Intent(Intent::ServerRebuildRequested(Box::new(
                ServerRebuildRequested {
                    instance_id: id,
                    image: image(),
                    name: None,
                    metadata: None,
                    key_name: Some(None),
                    user_data: Some(Some("ZGF0YQ==".into())),
                    description: Some(Some("d".into())),
                },
            ))),
            Event::Intent(Intent::SagaStepTimedOut {
                instance_id: id,
                step: "resize:finish_migration".into(),
                deadline_ms: 7,
            }),
            Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration))),
            Event::Instance(InstanceEvent::MigrationScheduled(p())),
            Event::Instance(InstanceEvent::ResizeMigrationStarted(p())),
            Event::Instance(InstanceEvent::ResizeMigrated(p())),
            Event::Instance(InstanceEvent::ResizeFinishStarted(p())),
            Event::Instance(InstanceEvent::ResizeFinished(p())),
            Event::Instance(InstanceEvent::ResizeConfirmStarted(p())),
            Event::Instance(InstanceEvent::ResizeConfirmed(p())),
            Event::Instance(InstanceEvent::ResizeRevertStarted(p())),
            Event::Instance(InstanceEvent::ResizeReverted(p())),
            Event::Instance(InstanceEvent::MigrationAborted(p())),
            Event::Instance(InstanceEvent::MigrationErrored(p())),
            Event::Instance(InstanceEvent::LiveMigrationStarted(p())),
            Event::Instance(InstanceEvent::LiveMigrated(p())),
            Event::Instance(InstanceEvent::Evacuated(p())),
            Event::Instance(InstanceEvent::RebuildStarted(Box::new(RebuildSpec {
                image: image(),
                name: "vm".into(),
                metadata: BTreeMap::new(),
                key_name: Some("key".into()),
                user_data: None,
                description: Some("d".into()),
            }))),
            Event::Instance(InstanceEvent::RebuildSpawnBegan),
            Event::Instance(InstanceEvent::RebuildCompleted {
                vm_state: crate::VmState::Stopped,
                power_state: 4,
            }),
            Event::Compute(ComputeCommand::PrepResize(c())),
            Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(c())),
            Event::Compute(ComputeCommand::FinishMigration(c())),
            Event::Compute(ComputeCommand::ConfirmMigration(c())),
            Event::Compute(ComputeCommand::RevertMigration(c())),
            Event::Compute(ComputeCommand::FinishRevertMigration(c())),
            Event::Compute(ComputeCommand::DropMigrationClaim(c())),
            Event::Compute(ComputeCommand::LiveMigrateInstance(c())),
            Event::Compute(ComputeCommand::RebuildInstance(c())),
            Event::Compute(ComputeCommand::RebuildEvacuatedInstance(c())),
            Event::Compute(ComputeCommand::CleanupEvacuatedInstance(c())),
            Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(f())),
            Event::ComputeFact(ComputeFact::ResizeClaimFailed(f())),
            Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(f())),
            Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(f())),
            Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(f())),
            Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(f())),
            Event::ComputeFact(ComputeFact::RevertFinishedOnSource(f())),
            Event::ComputeFact(ComputeFact::InstanceLiveMigrated(f())),
            Event::ComputeFact(ComputeFact::RebuildSpawnStarted(f())),
            Event::ComputeFact(ComputeFact::InstanceRebuilt(f())),
            Event::ComputeFact(ComputeFact::EvacuatedInstanceCleanedUp(f())),
            Event::ComputeFact(ComputeFact::MigrationStepFailed(f())),
        ];
        for event in events {
            let env = Envelope {
                meta: Meta {
                    event_id: Uuid::from_u128(3),
                    schema_version: SCHEMA_VERSION,
                    occurred_at_ms: 1,
                    correlation_id: "req-1".into(),
                    causation_id: None,
                    actor: Actor::default(),
                    aggregate_id: id.to_string(),
                    aggregate_version: 2,
                },
                event,
            };
            let back = crate::decode(&crate::encode(&env)).unwrap();
            assert_eq!(back, env);
        }
    }
}
