//! Every record type, one variant each. Intents and commands are imperative
//! or "...Requested"; facts are past tense.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Fault, Flavor, HostUsage, Image, Resources};

/// A user's request to create one server (topic `intents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCreateRequested {
    pub instance_id: Uuid,
    pub name: String,
    pub flavor: Flavor,
    pub image: Image,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub reservation_id: String,
    pub launch_index: u32,
    /// `os:scheduler_hints`, every value as a list of strings; `group`
    /// names the server group the instance joins.
    pub scheduler_hints: BTreeMap<String, Vec<String>>,
}

/// The conductor's acceptance of a create: the instance's first event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceCreated {
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub flavor: Flavor,
    pub image: Image,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub reservation_id: String,
    pub launch_index: u32,
    pub created_at_ms: i64,
    /// The create's scheduler hints (readers learn group membership here).
    pub scheduler_hints: BTreeMap<String, Vec<String>>,
}

/// What the scheduler is asked for one instance (Nova's RequestSpec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectHostsRequested {
    pub request_id: Uuid,
    pub instance_id: Uuid,
    pub project_id: String,
    pub resources: Resources,
    pub image_properties: BTreeMap<String, String>,
    pub extra_specs: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    /// Hosts already tried (Nova's RetryFilter).
    pub ignore_hosts: Vec<String>,
    pub num_alternates: u32,
    /// Nova's `os:scheduler_hints` (`same_host`, `different_host`, `group`,
    /// `query`, ...), every value as a list of strings.
    pub scheduler_hints: BTreeMap<String, Vec<String>>,
    /// The server group the instance joins, as it stood when asked.
    pub server_group: Option<ServerGroupSpec>,
    /// The image booted (Nova's IsolatedHostsFilter); `None` when volume-backed.
    pub image_id: Option<Uuid>,
}

/// A server group as the scheduler needs it (Nova's `InstanceGroup`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerGroupSpec {
    pub id: Uuid,
    pub policy: ServerGroupPolicy,
    /// Anti-affinity's `max_server_per_host` rule; `None` means 1.
    pub max_server_per_host: Option<u32>,
    /// Hosts the group's members are on.
    pub hosts: Vec<String>,
    /// The group's member instances.
    pub members: Vec<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerGroupPolicy {
    Affinity,
    AntiAffinity,
    SoftAffinity,
    SoftAntiAffinity,
}

impl ServerGroupPolicy {
    /// Nova's spelling (`anti-affinity`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerGroupPolicy::Affinity => "affinity",
            ServerGroupPolicy::AntiAffinity => "anti-affinity",
            ServerGroupPolicy::SoftAffinity => "soft-affinity",
            ServerGroupPolicy::SoftAntiAffinity => "soft-anti-affinity",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "affinity" => ServerGroupPolicy::Affinity,
            "anti-affinity" => ServerGroupPolicy::AntiAffinity,
            "soft-affinity" => ServerGroupPolicy::SoftAffinity,
            "soft-anti-affinity" => ServerGroupPolicy::SoftAntiAffinity,
            _ => return None,
        })
    }
}

/// A server group as accepted (Nova's `InstanceGroup`, without its
/// members: an instance joins with the `group` scheduler hint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerGroup {
    pub id: Uuid,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: ServerGroupPolicy,
    /// Anti-affinity's `max_server_per_host` rule (microversion 2.64).
    pub max_server_per_host: Option<u32>,
    pub created_at_ms: i64,
}

/// A host aggregate (Nova's `Aggregate`): a named set of hosts with
/// metadata; its `availability_zone` metadata puts the hosts in that zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostAggregate {
    /// Nova's integer id, assigned by the conductor (0 in a create intent).
    pub id: u32,
    pub uuid: Uuid,
    pub name: String,
    pub hosts: Vec<String>,
    /// `availability_zone` included when the aggregate has one.
    pub metadata: BTreeMap<String, String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl HostAggregate {
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get("availability_zone").map(String::as_str)
    }
}

/// A command to one host to claim resources and spawn an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpawnInstance {
    pub instance_id: Uuid,
    pub host: String,
    pub attempt: u32,
    pub project_id: String,
    pub name: String,
    pub flavor: Flavor,
    pub image: Image,
}

/// A host announcing itself and what it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRegistered {
    pub host: String,
    pub capacity: Resources,
    pub usage: HostUsage,
    pub cpu_arch: String,
    pub hypervisor_type: String,
    pub hypervisor_version: u64,
    pub availability_zone: String,
    pub capabilities: BTreeMap<String, String>,
    pub driver: String,
}

/// A user's public key (Nova's `KeyPair`): named per user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keypair {
    pub name: String,
    pub user_id: String,
    /// The project of the user who created it (not shown by Nova).
    pub project_id: String,
    pub public_key: String,
    /// Nova's fingerprint: colon-separated MD5 of the key blob.
    pub fingerprint: String,
    /// `ssh` or `x509` (microversion 2.2).
    pub key_type: String,
    pub created_at_ms: i64,
    /// Nova's integer id, assigned by the conductor (0 in an intent).
    pub id: u64,
}

/// A change to one flavor's extra specs and description.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlavorUpdate {
    pub flavor_id: String,
    pub extra_specs_set: BTreeMap<String, String>,
    pub extra_specs_unset: Vec<String>,
    /// `Some(None)` clears the description; `None` leaves it.
    pub description: Option<Option<String>>,
}

/// What an operator set on a host's `nova-compute` service, whole (the
/// intent carries the status after the change).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub host: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// Marked down by an operator whatever its heartbeats say.
    pub forced_down: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub consumer: String,
    pub error: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    // ---- intents ----
    ServerCreateRequested(Box<ServerCreateRequested>),
    ServerDeleteRequested {
        instance_id: Uuid,
        force: bool,
    },
    FlavorCreateRequested(Flavor),
    ImageCreateRequested(Image),
    /// The whole image after a metadata change (`PATCH`) or an upload
    /// (status active, size and hashes set).
    ImageUpdateRequested(Image),
    ImageDeleteRequested {
        image_id: Uuid,
    },
    ServerGroupCreateRequested(Box<ServerGroup>),
    ServerGroupDeleteRequested {
        group_id: Uuid,
    },
    AggregateCreateRequested(Box<HostAggregate>),
    /// `PUT /os-aggregates/{id}`: a new name and/or zone.
    AggregateUpdateRequested {
        aggregate_id: u32,
        name: Option<String>,
        availability_zone: Option<String>,
    },
    AggregateDeleteRequested {
        aggregate_id: u32,
    },
    AggregateHostAddRequested {
        aggregate_id: u32,
        host: String,
    },
    AggregateHostRemoveRequested {
        aggregate_id: u32,
        host: String,
    },
    /// `set_metadata`: `None` removes a key.
    AggregateMetadataSetRequested {
        aggregate_id: u32,
        metadata: BTreeMap<String, Option<String>>,
    },

    // ---- instances (aggregate: instance id) ----
    IntentRejected {
        intent_type: String,
        code: i32,
        message: String,
    },
    InstanceCreated(Box<InstanceCreated>),
    InstanceScheduled {
        host: String,
        alternates: Vec<String>,
        attempt: u32,
    },
    InstanceRescheduled {
        host: String,
        alternates: Vec<String>,
        attempt: u32,
        reason: String,
    },
    InstanceBecameActive {
        power_state: i32,
        launched_at_ms: i64,
    },
    InstanceFailed {
        fault: Fault,
    },
    InstanceDeleting,
    InstanceDeleted {
        deleted_at_ms: i64,
    },

    // ---- scheduler ----
    SelectHostsRequested(Box<SelectHostsRequested>),
    HostsSelected {
        request_id: Uuid,
        instance_id: Uuid,
        hosts: Vec<String>,
    },
    NoValidHostFound {
        request_id: Uuid,
        instance_id: Uuid,
        reason: String,
    },

    // ---- compute ----
    SpawnInstance(Box<SpawnInstance>),
    DestroyInstance {
        instance_id: Uuid,
        host: String,
    },

    // ---- compute-events ----
    ClaimSucceeded {
        instance_id: Uuid,
        host: String,
        attempt: u32,
        usage: HostUsage,
    },
    ClaimFailed {
        instance_id: Uuid,
        host: String,
        attempt: u32,
        reason: String,
        usage: HostUsage,
    },
    InstanceSpawned {
        instance_id: Uuid,
        host: String,
        attempt: u32,
        power_state: i32,
    },
    SpawnFailed {
        instance_id: Uuid,
        host: String,
        attempt: u32,
        reason: String,
        usage: HostUsage,
    },
    InstanceDestroyed {
        instance_id: Uuid,
        host: String,
        usage: HostUsage,
    },

    // ---- hosts ----
    HostRegistered(Box<HostRegistered>),
    HostHeartbeat {
        host: String,
        usage: HostUsage,
    },

    // ---- catalog ----
    FlavorCreated(Flavor),
    ImageCreated(Image),
    ImageUpdated(Image),
    ImageDeleted {
        image_id: Uuid,
    },
    ServerGroupCreated(Box<ServerGroup>),
    ServerGroupDeleted {
        group_id: Uuid,
    },
    AggregateCreated(Box<HostAggregate>),
    AggregateUpdated(Box<HostAggregate>),
    AggregateHostAdded {
        aggregate: Box<HostAggregate>,
        host: String,
    },
    AggregateHostRemoved {
        aggregate: Box<HostAggregate>,
        host: String,
    },
    AggregateMetadataSet(Box<HostAggregate>),
    AggregateDeleted {
        aggregate_id: u32,
    },

    // ---- keypairs: intents, then facts on catalog ----
    KeypairCreateRequested(Box<Keypair>),
    KeypairDeleteRequested {
        user_id: String,
        name: String,
    },
    KeypairCreated(Box<Keypair>),
    KeypairDeleted {
        user_id: String,
        name: String,
    },

    // ---- flavor changes: intents, then facts on catalog ----
    FlavorUpdateRequested(Box<FlavorUpdate>),
    /// The whole flavor after the change.
    FlavorUpdated(Flavor),
    FlavorDeleteRequested {
        flavor_id: String,
    },
    FlavorDeleted {
        flavor_id: String,
    },
    FlavorAccessChangeRequested {
        flavor_id: String,
        project_id: String,
        add: bool,
    },
    FlavorAccessAdded {
        flavor_id: String,
        project_id: String,
    },
    FlavorAccessRemoved {
        flavor_id: String,
        project_id: String,
    },

    // ---- compute services: intents, then facts on hosts ----
    ServiceUpdateRequested(Box<ServiceStatus>),
    ServiceUpdated(Box<ServiceStatus>),
    ServiceDeleteRequested {
        host: String,
    },
    ServiceDeleted {
        host: String,
    },

    // ---- dead-letter ----
    DeadLetter(Box<DeadLetter>),
}

impl Event {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ServerCreateRequested(_) => "ServerCreateRequested",
            Event::ServerDeleteRequested { .. } => "ServerDeleteRequested",
            Event::FlavorCreateRequested(_) => "FlavorCreateRequested",
            Event::ImageCreateRequested(_) => "ImageCreateRequested",
            Event::ImageUpdateRequested(_) => "ImageUpdateRequested",
            Event::ImageDeleteRequested { .. } => "ImageDeleteRequested",
            Event::ServerGroupCreateRequested(_) => "ServerGroupCreateRequested",
            Event::ServerGroupDeleteRequested { .. } => "ServerGroupDeleteRequested",
            Event::AggregateCreateRequested(_) => "AggregateCreateRequested",
            Event::AggregateUpdateRequested { .. } => "AggregateUpdateRequested",
            Event::AggregateDeleteRequested { .. } => "AggregateDeleteRequested",
            Event::AggregateHostAddRequested { .. } => "AggregateHostAddRequested",
            Event::AggregateHostRemoveRequested { .. } => "AggregateHostRemoveRequested",
            Event::AggregateMetadataSetRequested { .. } => "AggregateMetadataSetRequested",
            Event::IntentRejected { .. } => "IntentRejected",
            Event::InstanceCreated(_) => "InstanceCreated",
            Event::InstanceScheduled { .. } => "InstanceScheduled",
            Event::InstanceRescheduled { .. } => "InstanceRescheduled",
            Event::InstanceBecameActive { .. } => "InstanceBecameActive",
            Event::InstanceFailed { .. } => "InstanceFailed",
            Event::InstanceDeleting => "InstanceDeleting",
            Event::InstanceDeleted { .. } => "InstanceDeleted",
            Event::SelectHostsRequested(_) => "SelectHostsRequested",
            Event::HostsSelected { .. } => "HostsSelected",
            Event::NoValidHostFound { .. } => "NoValidHostFound",
            Event::SpawnInstance(_) => "SpawnInstance",
            Event::DestroyInstance { .. } => "DestroyInstance",
            Event::ClaimSucceeded { .. } => "ClaimSucceeded",
            Event::ClaimFailed { .. } => "ClaimFailed",
            Event::InstanceSpawned { .. } => "InstanceSpawned",
            Event::SpawnFailed { .. } => "SpawnFailed",
            Event::InstanceDestroyed { .. } => "InstanceDestroyed",
            Event::HostRegistered(_) => "HostRegistered",
            Event::HostHeartbeat { .. } => "HostHeartbeat",
            Event::FlavorCreated(_) => "FlavorCreated",
            Event::ImageCreated(_) => "ImageCreated",
            Event::ImageUpdated(_) => "ImageUpdated",
            Event::ImageDeleted { .. } => "ImageDeleted",
            Event::ServerGroupCreated(_) => "ServerGroupCreated",
            Event::ServerGroupDeleted { .. } => "ServerGroupDeleted",
            Event::AggregateCreated(_) => "AggregateCreated",
            Event::AggregateUpdated(_) => "AggregateUpdated",
            Event::AggregateHostAdded { .. } => "AggregateHostAdded",
            Event::AggregateHostRemoved { .. } => "AggregateHostRemoved",
            Event::AggregateMetadataSet(_) => "AggregateMetadataSet",
            Event::AggregateDeleted { .. } => "AggregateDeleted",
            Event::KeypairCreateRequested(_) => "KeypairCreateRequested",
            Event::KeypairDeleteRequested { .. } => "KeypairDeleteRequested",
            Event::KeypairCreated(_) => "KeypairCreated",
            Event::KeypairDeleted { .. } => "KeypairDeleted",
            Event::FlavorUpdateRequested(_) => "FlavorUpdateRequested",
            Event::FlavorUpdated(_) => "FlavorUpdated",
            Event::FlavorDeleteRequested { .. } => "FlavorDeleteRequested",
            Event::FlavorDeleted { .. } => "FlavorDeleted",
            Event::FlavorAccessChangeRequested { .. } => "FlavorAccessChangeRequested",
            Event::FlavorAccessAdded { .. } => "FlavorAccessAdded",
            Event::FlavorAccessRemoved { .. } => "FlavorAccessRemoved",
            Event::ServiceUpdateRequested(_) => "ServiceUpdateRequested",
            Event::ServiceUpdated(_) => "ServiceUpdated",
            Event::ServiceDeleteRequested { .. } => "ServiceDeleteRequested",
            Event::ServiceDeleted { .. } => "ServiceDeleted",
            Event::DeadLetter(_) => "DeadLetter",
        }
    }
}
