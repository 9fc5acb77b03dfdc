//! The conversions' tests: every record type round-trips field for field,
//! and records written under old names or old fields still decode.

use std::collections::BTreeMap;

use super::*;
use crate::events;
use crate::rejection::RejectionKind;
use crate::state::PowerState;

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
        members: Vec::new(),
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

fn core_samples() -> Vec<Event> {
    let id = Uuid::new_v4();
    let usage = HostUsage {
        vcpus_used: 1,
        memory_mb_used: 2,
        disk_gb_used: 3,
        instances: 4,
        generation: 5,
    };
    vec![
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
                access: Default::default(),
                hostname: "vm-1.example.org".into(),
                trusted_image_certificates: Some(vec!["c1".into(), "c2".into()]),
                requested_host: Some("h2".into()),
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
        Event::Intent(Intent::ImageChangeRequested {
            image_id: id,
            change: crate::image::ImageChange::SetMemberStatus {
                member: "p2".into(),
                status: "accepted".into(),
            },
        }),
        Event::Intent(Intent::ImageChangeRequested {
            image_id: id,
            change: crate::image::ImageChange::Deactivate,
        }),
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
            power_state: PowerState::Running,
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
            power_state: PowerState::Suspended,
        }),
        Event::Instance(InstanceEvent::InstanceTaskFailed {
            action: ServerAction::Reboot { hard: false },
            vm_state: VmState::Error,
            power_state: PowerState::Shutdown,
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
        Event::Instance(InstanceEvent::InstancePowerStateSynced {
            power_state: PowerState::Shutdown,
        }),
        Event::ComputeFact(ComputeFact::PowerStateObserved {
            instance_id: Uuid::from_u128(7),
            host: "h".into(),
            power_state: PowerState::Running,
        }),
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
        Event::Intent(Intent::QuotaClassSetRequested {
            class_name: "default".into(),
            limits: BTreeMap::from([("cores".into(), 40)]),
        }),
        Event::Catalog(CatalogEvent::QuotaClassSetUpdated {
            class_name: "default".into(),
            limits: BTreeMap::from([("cores".into(), 40), ("ram".into(), -1)]),
        }),
        Event::Catalog(CatalogEvent::TokenRevoked {
            audit_id: "aud1t".into(),
            expires_at_ms: 1_700_000_000_000,
        }),
        Event::Catalog(CatalogEvent::DomainCreated(Box::new(identity_domain()))),
        Event::Catalog(CatalogEvent::DomainUpdated(Box::new(identity_domain()))),
        Event::Catalog(CatalogEvent::DomainDeleted {
            domain_id: "d".into(),
        }),
        Event::Catalog(CatalogEvent::ProjectCreated(Box::new(identity_project()))),
        Event::Catalog(CatalogEvent::ProjectUpdated(Box::new(identity_project()))),
        Event::Catalog(CatalogEvent::ProjectDeleted {
            project_id: "p".into(),
        }),
        Event::Catalog(CatalogEvent::UserCreated(Box::new(identity_user()))),
        Event::Catalog(CatalogEvent::UserUpdated(Box::new(identity_user()))),
        Event::Catalog(CatalogEvent::UserDeleted {
            user_id: "u".into(),
        }),
        Event::Catalog(CatalogEvent::GroupCreated(Box::new(identity_group()))),
        Event::Catalog(CatalogEvent::GroupUpdated(Box::new(identity_group()))),
        Event::Catalog(CatalogEvent::GroupDeleted {
            group_id: "g".into(),
        }),
        Event::Catalog(CatalogEvent::RoleCreated(Box::new(identity_role()))),
        Event::Catalog(CatalogEvent::RoleUpdated(Box::new(identity_role()))),
        Event::Catalog(CatalogEvent::RoleDeleted {
            role_id: "r".into(),
        }),
        Event::Catalog(CatalogEvent::RoleGranted(Box::new(role_grant()))),
        Event::Catalog(CatalogEvent::RoleRevoked(Box::new(role_grant()))),
        Event::Catalog(CatalogEvent::GroupMemberAdded {
            group_id: "g".into(),
            user_id: "u".into(),
        }),
        Event::Catalog(CatalogEvent::GroupMemberRemoved {
            group_id: "g".into(),
            user_id: "u".into(),
        }),
        Event::Catalog(CatalogEvent::ApplicationCredentialCreated(Box::new(
            crate::identity::ApplicationCredential {
                id: "a".into(),
                name: "ci".into(),
                description: String::new(),
                user_id: "u".into(),
                project_id: "p".into(),
                secret_hash: "pbkdf2-sha256$1$c2FsdA$aGFzaA".into(),
                role_ids: vec!["r".into()],
                expires_at_ms: 0,
                unrestricted: false,
            },
        ))),
        Event::Catalog(CatalogEvent::ApplicationCredentialDeleted {
            user_id: "u".into(),
            application_credential_id: "a".into(),
        }),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: Some("n".into()),
            description: Some(None),
            access: Default::default(),
            hostname: None,
        }),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: None,
            description: Some(Some("d".into())),
            access: Default::default(),
            hostname: Some("web-2".into()),
        }),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: None,
            description: None,
            access: Default::default(),
            hostname: None,
        }),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: None,
            description: None,
            access: crate::AccessChange {
                access_ip_v4: Some([192, 0, 2, 1].into()),
                access_ip_v6: None,
                auto_disk_config: Some(false),
            },
            hostname: None,
        }),
        Event::Instance(InstanceEvent::InstanceUpdated {
            name: "n".into(),
            description: None,
            access: Some(crate::AccessConfig {
                access_ip_v4: None,
                access_ip_v6: Some("2001:db8::1".parse().unwrap()),
                auto_disk_config: true,
            }),
            hostname: Some("web-1".into()),
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
            access: None,
            hostname: None,
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
            power_state: PowerState::Running,
        }),
        Event::ComputeFact(ComputeFact::ServerActionFailed {
            instance_id: id,
            host: "h".into(),
            action: ServerAction::Resume,
            reason: "no".into(),
            power_state: PowerState::Suspended,
        }),
        Event::Intent(Intent::ConsoleOutputRequested {
            instance_id: id,
            length: Some(-3),
        }),
        Event::Instance(InstanceEvent::ConsoleOutputRead {
            output: "login: ".into(),
        }),
        Event::Compute(ComputeCommand::GetConsoleOutput {
            instance_id: id,
            host: "h".into(),
            length: None,
            request_id: Uuid::from_u128(9),
        }),
        Event::ComputeFact(ComputeFact::ConsoleOutputFetched {
            instance_id: id,
            host: "h".into(),
            request_id: Uuid::from_u128(9),
            output: String::new(),
            error: Some("Guest does not have a console available.".into()),
        }),
        Event::ComputeFact(ComputeFact::SnapshotProgressed {
            instance_id: id,
            host: "h".into(),
            action: ServerAction::CreateImage {
                image_id: Some(Uuid::from_u128(10)),
                name: "snap".into(),
                metadata: [("k".to_owned(), "v".to_owned())].into(),
            },
            task_state: crate::TaskState::ImageUploading,
            size: 42,
            checksum: "c".into(),
            os_hash_value: "o".into(),
        }),
        Event::Compute(ComputeCommand::PerformServerAction {
            instance_id: id,
            host: "h".into(),
            action: ServerAction::ResetState {
                state: crate::VmState::Error,
            },
        }),
        Event::Compute(ComputeCommand::PerformServerAction {
            instance_id: id,
            host: "h".into(),
            action: ServerAction::SoftDelete,
        }),
        Event::Compute(ComputeCommand::PerformServerAction {
            instance_id: id,
            host: "h".into(),
            action: ServerAction::Restore,
        }),
        Event::Compute(ComputeCommand::PerformServerAction {
            instance_id: id,
            host: "h".into(),
            action: ServerAction::TriggerCrashDump,
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
                requested_host: Some("h1".into()),
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
                requested_host: None,
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
    ]
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
        let mut raw = pb::Envelope::decode(&encode_envelope(&envelope(event.clone()))[..]).unwrap();
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
        members: Vec::new(),
    }
}

fn saga_samples() -> Vec<Event> {
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
        stop_at_destination: false,
    };
    let progress = MigrationProgress {
        migration_id: mid,
        power_state: PowerState::Shutdown,
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
        power_state: PowerState::Running,
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
    vec![
        Event::Intent(Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: id,
                migration_type: MigrationType::Resize,
                flavor: Some(flavor("2")),
                host: Some("h2".into()),
                source_host_down: true,
                auto_disk_config: Some(true),
                stop_at_destination: false,
            },
        ))),
        Event::Intent(Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: id,
                migration_type: MigrationType::Migration,
                flavor: None,
                host: None,
                source_host_down: false,
                auto_disk_config: None,
                stop_at_destination: true,
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
                access: Default::default(),
                trusted_image_certificates: Some(Some(vec!["c".into()])),
                hostname: Some("web-2".into()),
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
                access: Default::default(),
                trusted_image_certificates: Some(None),
                hostname: None,
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
            access: None,
            trusted_image_certificates: Some(vec!["c".into()]),
            hostname: Some("vm".into()),
        }))),
        Event::Instance(InstanceEvent::RebuildSpawnBegan),
        Event::Instance(InstanceEvent::RebuildCompleted {
            vm_state: crate::VmState::Stopped,
            power_state: PowerState::Shutdown,
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
        Event::Intent(Intent::ConsoleTokenRequested {
            instance_id: id,
            token_hash: crate::console::hash_token("t"),
            console_type: "novnc".into(),
        }),
        Event::Instance(InstanceEvent::ConsoleTokenIssued(Box::new(
            crate::console::ConsoleToken {
                instance_id: id,
                token_hash: crate::console::hash_token("t"),
                console_type: "novnc".into(),
                host: "fake-host-1".into(),
                address: "127.0.0.1".into(),
                port: 5901,
                expires_at_ms: 600_000,
            },
        ))),
        Event::ComputeFact(ComputeFact::ConsoleEndpointReported {
            instance_id: id,
            host: "fake-host-1".into(),
            address: "127.0.0.1".into(),
            port: 5901,
        }),
    ]
}

/// The record types the two lists above leave out, every field set.
fn other_samples() -> Vec<Event> {
    let id = Uuid::from_u128(5);
    let usage = HostUsage {
        vcpus_used: 1,
        memory_mb_used: 2,
        disk_gb_used: 3,
        instances: 4,
        generation: 5,
    };
    vec![
        Event::Instance(InstanceEvent::InstanceCreated(Box::new(InstanceCreated {
            name: "vm".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            flavor: sample_flavor(),
            image: sample_image(),
            metadata: BTreeMap::from([("k".into(), "v".into())]),
            availability_zone: Some("az".into()),
            key_name: Some("key".into()),
            user_data: Some("ZGF0YQ==".into()),
            description: Some("d".into()),
            tags: vec!["t".into()],
            reservation_id: "r-1".into(),
            launch_index: 1,
            created_at_ms: 7,
            scheduler_hints: BTreeMap::from([("group".into(), vec![id.to_string()])]),
            access: Default::default(),
            hostname: "vm".into(),
            trusted_image_certificates: Some(vec!["c".into()]),
            requested_host: Some("h1".into()),
        }))),
        Event::Instance(InstanceEvent::InstanceRescheduled {
            host: "h2".into(),
            alternates: vec!["h3".into()],
            attempt: 2,
            reason: "claim failed".into(),
        }),
        Event::Instance(InstanceEvent::InstanceDeleted { deleted_at_ms: 9 }),
        Event::Scheduler(SchedulerEvent::NoValidHostFound {
            request_id: id,
            instance_id: Uuid::from_u128(6),
            reason: "none".into(),
        }),
        Event::Compute(ComputeCommand::SpawnInstance(Box::new(SpawnInstance {
            instance_id: id,
            host: "h".into(),
            attempt: 2,
            project_id: "p".into(),
            name: "vm".into(),
            flavor: sample_flavor(),
            image: sample_image(),
        }))),
        Event::Compute(ComputeCommand::DestroyInstance {
            instance_id: id,
            host: "h".into(),
        }),
        Event::ComputeFact(ComputeFact::ClaimSucceeded {
            instance_id: id,
            host: "h".into(),
            attempt: 2,
            usage,
        }),
        Event::ComputeFact(ComputeFact::InstanceSpawned {
            instance_id: id,
            host: "h".into(),
            attempt: 2,
            power_state: PowerState::Running,
        }),
        Event::ComputeFact(ComputeFact::SpawnFailed {
            instance_id: id,
            host: "h".into(),
            attempt: 2,
            reason: "boom".into(),
            usage,
        }),
        Event::Host(HostEvent::HostRegistered(Box::new(HostRegistered {
            host: "h".into(),
            capacity: Resources {
                vcpus: 8,
                memory_mb: 16384,
                disk_gb: 100,
            },
            usage,
            cpu_arch: "x86_64".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 3,
            availability_zone: "az".into(),
            capabilities: BTreeMap::from([("hypervisor_type".into(), "fake".into())]),
            driver: "fake".into(),
        }))),
        Event::Catalog(CatalogEvent::ImageCreated(sample_image())),
        Event::Billing(crate::billing::BillingEvent::UsageRated(Box::new(
            crate::billing::tests::sample(),
        ))),
        Event::DeadLetter(Box::new(DeadLetter {
            source_topic: "novalog.intents".into(),
            partition: 2,
            offset: 3,
            consumer: "conductor".into(),
            error: "missing field host".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        })),
    ]
}

/// One sample of every record type written today, all fields set, comes
/// back equal: a field a conversion drops or a type it misses fails here.
#[test]
fn every_record_type_round_trips() {
    let samples: Vec<Event> = [core_samples(), saga_samples(), other_samples()].concat();
    for event in &samples {
        let env = envelope(event.clone());
        assert_eq!(decode_envelope(&encode_envelope(&env)).unwrap(), env);
    }
    let sampled: std::collections::BTreeSet<&str> = samples.iter().map(Event::type_name).collect();
    let written: std::collections::BTreeSet<&str> = TYPE_NAMES.iter().copied().collect();
    let missing: Vec<_> = written.difference(&sampled).collect();
    assert!(missing.is_empty(), "no sample of {missing:?}");
    assert_eq!(TYPE_NAMES.len(), written.len(), "a type listed twice");
}

/// A required field absent on the wire is named in the error (the
/// dead-letter reason), nested ones with their message's prefix.
#[test]
fn a_missing_field_is_named() {
    let missing = |type_name: &str, payload: Vec<u8>| {
        let mut raw =
            pb::Envelope::from(&envelope(Event::Instance(InstanceEvent::InstanceUnlocked)));
        raw.r#type = type_name.into();
        raw.payload = payload;
        decode_envelope(&raw.encode_to_vec())
    };
    let spawn = pb::SpawnInstance {
        instance_id: Uuid::from_u128(1).to_string(),
        host: "h".into(),
        ..Default::default()
    };
    assert_eq!(
        missing("SpawnInstance", spawn.clone().encode_to_vec()),
        Err(DecodeError::Missing("flavor"))
    );
    let flavor = pb::Flavor {
        id: "1".into(),
        ..Default::default()
    };
    let spawn = pb::SpawnInstance {
        flavor: Some(flavor),
        ..spawn
    };
    assert_eq!(
        missing("SpawnInstance", spawn.encode_to_vec()),
        Err(DecodeError::Missing("flavor.name"))
    );
    let heartbeat = pb::HostHeartbeat::default().encode_to_vec();
    assert_eq!(
        missing("HostHeartbeat", heartbeat),
        Err(DecodeError::Missing("host"))
    );
    let selected = pb::HostsSelected::default().encode_to_vec();
    assert_eq!(
        missing("HostsSelected", selected),
        Err(DecodeError::Missing("hosts"))
    );
    let group = pb::ServerGroupCreated {
        group: Some(pb::ServerGroup {
            id: Uuid::from_u128(1).to_string(),
            policy: "napping".into(),
            ..Default::default()
        }),
    };
    assert!(matches!(
        missing("ServerGroupCreated", group.encode_to_vec()),
        Err(DecodeError::Invalid {
            field: "group.policy",
            ..
        })
    ));
}

/// Access addresses are checked where a record is decoded: one that is
/// not an address is a decode error naming the field; a record written
/// before they existed leaves them (an update) or has none (a create).
#[test]
fn access_settings_are_validated_on_decode_and_absent_in_older_records() {
    let env = envelope(Event::Instance(InstanceEvent::InstanceUpdated {
        name: "n".into(),
        description: None,
        access: None,
        hostname: None,
    }));
    let mut raw = pb::Envelope::from(&env);
    raw.payload = pb::InstanceUpdated {
        name: "n".into(),
        description: None,
        access: Some(pb::AccessConfig {
            access_ip_v4: "1.2.3".into(),
            ..Default::default()
        }),
        hostname: String::new(),
    }
    .encode_to_vec();
    assert!(matches!(
        decode_envelope(&raw.encode_to_vec()),
        Err(DecodeError::Invalid {
            field: "access.access_ip_v4",
            ..
        })
    ));
    raw.payload = pb::InstanceUpdated {
        name: "n".into(),
        description: None,
        access: None,
        hostname: String::new(),
    }
    .encode_to_vec();
    assert_eq!(
        decode_envelope(&raw.encode_to_vec()).unwrap().event,
        env.event
    );
}

/// `power_state` travels as Nova's integer; one Nova does not know is a
/// decode error naming the field, not a guess.
#[test]
fn power_state_is_nova_s_integer_on_the_wire() {
    let env = envelope(Event::Instance(InstanceEvent::InstanceBecameActive {
        power_state: PowerState::Suspended,
        launched_at_ms: 9,
    }));
    let mut raw = pb::Envelope::from(&env);
    let active = pb::InstanceBecameActive::decode(&raw.payload[..]).unwrap();
    assert_eq!(active.power_state, 7);
    for (code, power) in [(0, PowerState::NoState), (4, PowerState::Shutdown)] {
        raw.payload = pb::InstanceBecameActive {
            power_state: code,
            launched_at_ms: 9,
        }
        .encode_to_vec();
        let back = decode_envelope(&raw.encode_to_vec()).unwrap().event;
        let want = InstanceEvent::InstanceBecameActive {
            power_state: power,
            launched_at_ms: 9,
        };
        assert_eq!(back, Event::Instance(want));
    }
    raw.payload = pb::InstanceBecameActive {
        power_state: 2,
        launched_at_ms: 9,
    }
    .encode_to_vec();
    assert_eq!(
        decode_envelope(&raw.encode_to_vec()),
        Err(DecodeError::Invalid {
            field: "power_state",
            message: "unknown power_state 2".into()
        })
    );
    // Its JSON form (exports, spools) keeps the integer too.
    let json = serde_json::to_value(&env.event).unwrap();
    assert_eq!(json["Instance"]["InstanceBecameActive"]["power_state"], 7);
}

fn identity_domain() -> crate::identity::IdentityDomain {
    crate::identity::IdentityDomain {
        id: "d".into(),
        name: "Ops".into(),
        description: "operations".into(),
        enabled: true,
    }
}

fn identity_project() -> crate::identity::IdentityProject {
    crate::identity::IdentityProject {
        id: "p".into(),
        name: "web".into(),
        domain_id: "default".into(),
        description: String::new(),
        enabled: false,
        tags: vec!["t".into()],
    }
}

fn identity_user() -> crate::identity::IdentityUser {
    crate::identity::IdentityUser {
        id: "u".into(),
        name: "alice".into(),
        domain_id: "default".into(),
        description: String::new(),
        enabled: true,
        default_project_id: "p".into(),
        email: "a@example.org".into(),
        password_hash: "pbkdf2-sha256$1$c2FsdA$aGFzaA".into(),
        token_epoch: 3,
    }
}

fn identity_group() -> crate::identity::IdentityGroup {
    crate::identity::IdentityGroup {
        id: "g".into(),
        name: "devs".into(),
        domain_id: "default".into(),
        description: String::new(),
    }
}

fn identity_role() -> crate::identity::IdentityRole {
    crate::identity::IdentityRole {
        id: "r".into(),
        name: "auditor".into(),
        description: String::new(),
    }
}

fn role_grant() -> crate::identity::RoleGrant {
    crate::identity::RoleGrant {
        role_id: "r".into(),
        actor_id: "g".into(),
        actor_is_group: true,
        target_id: "d".into(),
        target_is_domain: true,
        inherited: true,
    }
}
