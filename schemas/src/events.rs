//! Every record type, one variant each. Intents and commands are imperative
//! or "...Requested"; facts are past tense.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::ServerAction;
use crate::identity::{
    ApplicationCredential, IdentityDomain, IdentityGroup, IdentityProject, IdentityRole,
    IdentityUser, RoleGrant,
};
use crate::migration::{
    Migration, MigrationCommand, MigrationFact, MigrationProgress, RebuildSpec,
    ServerMigrationRequested, ServerRebuildRequested,
};
use crate::rejection::RejectionKind;
use crate::state::{PowerState, TaskState, VmState};
use crate::values::{AccessChange, AccessConfig, Fault, Flavor, HostUsage, Image, Resources};

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
    /// The request's `min_count` and `max_count` (one intent per
    /// instance, `launch_index` 0 first): quota admits at least
    /// `min_count` of them or none.
    pub min_count: u32,
    pub max_count: u32,
    /// `accessIPv4`, `accessIPv6`, `OS-DCF:diskConfig` as given.
    pub access: AccessConfig,
    /// The guest's hostname: the one asked for (2.90), else derived from
    /// the name by the API; empty in records written before it.
    #[serde(default)]
    pub hostname: String,
    /// The certificate ids to validate the image with (2.63).
    #[serde(default)]
    pub trusted_image_certificates: Option<Vec<String>>,
    /// The host an administrator asked for (2.74 `host` or
    /// `hypervisor_hostname`: one node per host here).
    #[serde(default)]
    pub requested_host: Option<String>,
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
    pub access: AccessConfig,
    /// Empty in records written before it: derived from the name.
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub trusted_image_certificates: Option<Vec<String>>,
    #[serde(default)]
    pub requested_host: Option<String>,
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
    /// The flavor's name (Nova's AggregateTypeAffinityFilter).
    #[serde(default)]
    pub flavor_name: String,
    /// Only this host may be chosen (Nova's `requested_destination`, a
    /// create's 2.74 `host` / `hypervisor_hostname`); filters still run.
    #[serde(default)]
    pub requested_host: Option<String>,
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

/// What an operator set on a host's `nova-compute` service, whole.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub host: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// Marked down by an operator whatever its heartbeats say.
    pub forced_down: bool,
}

/// A change to one host's `nova-compute` service: the fields that are
/// `Some` change, on the status as the conductor has it when it decides,
/// so concurrent changes to different fields are all kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceChange {
    pub host: String,
    pub disabled: Option<bool>,
    /// `Some(None)` clears the reason; `None` leaves it.
    pub disabled_reason: Option<Option<String>>,
    pub forced_down: Option<bool>,
    /// The status the API showed: the base for a host whose status the
    /// conductor has not recorded (changed before it kept them).
    pub seen: ServiceStatus,
}

impl ServiceChange {
    /// `current` with this change applied.
    pub fn apply(&self, current: &ServiceStatus) -> ServiceStatus {
        ServiceStatus {
            host: self.host.clone(),
            disabled: self.disabled.unwrap_or(current.disabled),
            disabled_reason: self
                .disabled_reason
                .clone()
                .unwrap_or_else(|| current.disabled_reason.clone()),
            forced_down: self.forced_down.unwrap_or(current.forced_down),
        }
    }
}

/// The topics records travel on (DESIGN §3), each with its record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// [`Intent`]
    Intent,
    /// [`InstanceEvent`]
    Instance,
    /// [`SchedulerEvent`]
    Scheduler,
    /// [`ComputeCommand`]
    Compute,
    /// [`ComputeFact`] (`compute-events`)
    ComputeFact,
    /// [`HostEvent`]
    Host,
    /// [`CatalogEvent`]
    Catalog,
    /// [`DeadLetter`]
    DeadLetter,
    /// [`BillingEvent`](crate::billing::BillingEvent)
    Billing,
}

impl Topic {
    /// The topic's name without the namespace.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Intent => "intents",
            Topic::Instance => "instances",
            Topic::Scheduler => "scheduler",
            Topic::Compute => "compute",
            Topic::ComputeFact => "compute-events",
            Topic::Host => "hosts",
            Topic::Catalog => "catalog",
            Topic::DeadLetter => "dead-letter",
            Topic::Billing => "billing",
        }
    }

    pub const ALL: [Topic; 9] = [
        Topic::Intent,
        Topic::Instance,
        Topic::Scheduler,
        Topic::Compute,
        Topic::ComputeFact,
        Topic::Host,
        Topic::Catalog,
        Topic::DeadLetter,
        Topic::Billing,
    ];

    /// The topic a namespaced topic name (`<namespace><name>`) stands for;
    /// `None` for a name that ends in none of them.
    pub fn of_name(topic: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| topic.ends_with(t.name()))
    }
}

/// A record that failed to decode or apply, with the error.
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

/// Every record, by the topic it travels on: each topic has its own type, so
/// a handler's match over what its topic carries is exhaustive, and a record
/// whose type does not belong to the topic it was read from does not decode
/// there ([`crate::decode_on`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Intent(Intent),
    Instance(InstanceEvent),
    Scheduler(SchedulerEvent),
    Compute(ComputeCommand),
    ComputeFact(ComputeFact),
    Host(HostEvent),
    Catalog(CatalogEvent),
    DeadLetter(Box<DeadLetter>),
    Billing(crate::billing::BillingEvent),
}

/// What a user (or an operator) asked for, and the conductor's own step
/// timeouts: topic `intents`, read by the conductor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Intent {
    ServerCreateRequested(Box<ServerCreateRequested>),
    ServerDeleteRequested {
        instance_id: Uuid,
        force: bool,
    },
    FlavorCreateRequested(Flavor),
    ImageCreateRequested(Image),
    /// Superseded by the operations below: kept so that old logs decode.
    /// The conductor refuses it, as a whole image computed from the API's
    /// copy would undo changes made since that copy.
    ImageUpdateRequested(Image),
    /// `PATCH /v2/images/{id}`: the JSON-patch operations, applied by the
    /// conductor to the image as it is when it decides.
    ImagePatchRequested(Box<crate::image::ImagePatch>),
    /// `PUT /v2/images/{id}/file` begins: queued → saving.
    ImageUploadRequested {
        image_id: Uuid,
    },
    /// The upload's bytes are stored: saving → active with their size and
    /// digests.
    ImageUploadFinishRequested(Box<crate::image::ImageData>),
    /// The upload failed: saving → queued, no data.
    ImageUploadAbortRequested {
        image_id: Uuid,
    },
    ImageDeleteRequested {
        image_id: Uuid,
    },
    /// A member, a tag, deactivate / reactivate, or a staging or import
    /// step, decided on the image as it is then.
    ImageChangeRequested {
        image_id: Uuid,
        change: crate::image::ImageChange,
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
    /// `POST /servers/{id}/action`.
    ServerActionRequested {
        instance_id: Uuid,
        action: ServerAction,
    },
    /// `PUT /servers/{id}`: a field is changed when `Some`
    /// (`description: Some(None)` clears it).
    ServerUpdateRequested {
        instance_id: Uuid,
        name: Option<String>,
        description: Option<Option<String>>,
        access: AccessChange,
        /// The new hostname (2.90); `None`: unchanged.
        #[serde(default)]
        hostname: Option<String>,
    },
    /// Metadata: all replaced by `set` (`replace_all`), else `set` merged
    /// and `remove` removed.
    ServerMetadataChangeRequested {
        instance_id: Uuid,
        replace_all: bool,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Tags (2.26): all replaced by `add` (`replace_all`), else `add` added
    /// and `remove` removed.
    ServerTagsChangeRequested {
        instance_id: Uuid,
        replace_all: bool,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// `PUT /os-quota-sets/{project}` (administrators): new limits, -1
    /// unlimited; `force` skips the check against current usage.
    QuotaSetRequested {
        project_id: String,
        limits: BTreeMap<String, i64>,
        force: bool,
    },
    /// `DELETE /os-quota-sets/{project}`: back to the defaults.
    QuotaResetRequested {
        project_id: String,
    },
    /// `PUT /os-quota-class-sets/{class_name}` (administrators): limits of
    /// a quota class; class `default` is what projects fall back to.
    QuotaClassSetRequested {
        class_name: String,
        limits: BTreeMap<String, i64>,
    },
    KeypairCreateRequested(Box<Keypair>),
    KeypairDeleteRequested {
        user_id: String,
        name: String,
    },
    FlavorUpdateRequested(Box<FlavorUpdate>),
    FlavorDeleteRequested {
        flavor_id: String,
    },
    FlavorAccessChangeRequested {
        flavor_id: String,
        project_id: String,
        add: bool,
    },
    /// The whole status after a change, as the API computed it; superseded
    /// by `ServiceChangeRequested` (kept so that old logs decode).
    ServiceUpdateRequested(Box<ServiceStatus>),
    /// `PUT /os-services/...`: the fields to change.
    ServiceChangeRequested(Box<ServiceChange>),
    ServiceDeleteRequested {
        host: String,
    },
    ServerMigrationRequested(Box<ServerMigrationRequested>),
    ServerResizeConfirmRequested {
        instance_id: Uuid,
    },
    ServerResizeRevertRequested {
        instance_id: Uuid,
    },
    ServerRebuildRequested(Box<ServerRebuildRequested>),
    /// A step's deadline passed (the conductor's timer writes it on
    /// `intents`; the conductor compensates).
    /// A remote console for a server: the API made the token and sends
    /// only its hash ([`crate::console::hash_token`]).
    ConsoleTokenRequested {
        instance_id: Uuid,
        token_hash: String,
        console_type: String,
    },
    SagaStepTimedOut {
        instance_id: Uuid,
        step: String,
        deadline_ms: i64,
    },
    /// `os-getConsoleOutput`: the last `length` lines of the guest's
    /// console log (`None`: all of it), read by its host. Answered by a
    /// [`InstanceEvent::ConsoleOutputRead`] (or a rejection) caused by
    /// this intent.
    ConsoleOutputRequested {
        instance_id: Uuid,
        length: Option<i64>,
    },
}

/// The authoritative instance history (verdicts, state transitions, saga
/// steps): topic `instances`, written by the conductor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InstanceEvent {
    /// The conductor turned an intent down: what went wrong and Nova's
    /// message (the API alone maps `kind` to an HTTP status).
    IntentRejected {
        intent_type: String,
        kind: RejectionKind,
        message: String,
    },
    InstanceCreated(Box<InstanceCreated>),
    /// The answer to a [`Intent::ConsoleOutputRequested`], relayed from
    /// the host: the console output as Nova's compute manager returns it.
    /// Caused by the intent (its verdict); the instance does not change.
    ConsoleOutputRead {
        output: String,
    },
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
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
        launched_at_ms: i64,
    },
    InstanceFailed {
        fault: Fault,
    },
    InstanceDeleteStarted,
    InstanceDeleted {
        deleted_at_ms: i64,
    },
    /// An action accepted: the instance is in `task_state` until its host
    /// reports (the verdict on a `ServerActionRequested`).
    InstanceTaskStarted {
        action: ServerAction,
        task_state: TaskState,
    },
    /// The host carried the action out: `vm_state` and the guest's
    /// `power_state` after it, no task.
    InstanceTaskCompleted {
        action: ServerAction,
        vm_state: VmState,
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
    },
    /// The host failed to carry the action out: the fault is recorded, the
    /// task cleared, `vm_state` as Nova's compute manager leaves it.
    InstanceTaskFailed {
        action: ServerAction,
        vm_state: VmState,
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
        fault: Fault,
    },
    /// `locked_by` is Nova's `owner` or `admin`.
    InstanceLocked {
        locked_by: String,
        reason: Option<String>,
    },
    InstanceUnlocked,
    /// Name, description and (`Some`) access settings after an update;
    /// records written before the access settings existed leave them.
    InstanceUpdated {
        name: String,
        description: Option<String>,
        access: Option<AccessConfig>,
        /// The hostname after the update (2.90); `None`: unchanged.
        #[serde(default)]
        hostname: Option<String>,
    },
    /// The whole metadata after a change.
    InstanceMetadataSet {
        metadata: BTreeMap<String, String>,
    },
    /// Every tag after a change.
    InstanceTagsSet {
        tags: Vec<String>,
    },
    MigrationStarted(Box<Migration>),
    MigrationScheduled(Box<MigrationProgress>),
    ResizeMigrationStarted(Box<MigrationProgress>),
    ResizeMigrated(Box<MigrationProgress>),
    ResizeFinishStarted(Box<MigrationProgress>),
    ResizeFinished(Box<MigrationProgress>),
    ResizeConfirmStarted(Box<MigrationProgress>),
    ResizeConfirmed(Box<MigrationProgress>),
    ResizeRevertStarted(Box<MigrationProgress>),
    ResizeReverted(Box<MigrationProgress>),
    /// Compensated: back on the source as before, the migration in error.
    MigrationAborted(Box<MigrationProgress>),
    /// Could not be compensated: ERROR with a fault naming the step.
    MigrationErrored(Box<MigrationProgress>),
    /// The destination claimed: the source starts moving the guest.
    LiveMigrationStarted(Box<MigrationProgress>),
    LiveMigrated(Box<MigrationProgress>),
    Evacuated(Box<MigrationProgress>),
    RebuildStarted(Box<RebuildSpec>),
    RebuildSpawnBegan,
    /// A console token authorised (aggregate version 0: the instance does
    /// not change): the proxy connects its holder to `address:port` until
    /// `expires_at_ms`, or until the instance is deleted.
    ConsoleTokenIssued(Box<crate::console::ConsoleToken>),
    RebuildCompleted {
        vm_state: VmState,
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
    },
    /// The power-state sync found the guest in another power state than
    /// recorded (Nova's `_sync_instance_power_state`): the recorded one is
    /// corrected; what Nova does about it (a stop) follows as an action.
    InstancePowerStateSynced {
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
    },
}

/// Scheduling requests (from the conductor) and the scheduler's decisions:
/// topic `scheduler`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SchedulerEvent {
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
}

/// Commands to one host: topic `compute`, written by the conductor, read by
/// the host's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ComputeCommand {
    SpawnInstance(Box<SpawnInstance>),
    DestroyInstance {
        instance_id: Uuid,
        host: String,
    },
    /// Carry out a server action on the guest (reboot, power off/on,
    /// pause, suspend, ...).
    PerformServerAction {
        instance_id: Uuid,
        host: String,
        action: ServerAction,
    },
    /// Read the guest's console log (its last `length` lines; `None`: all)
    /// for the intent `request_id`, whose answer the fact names.
    GetConsoleOutput {
        instance_id: Uuid,
        host: String,
        length: Option<i64>,
        request_id: Uuid,
    },
    PrepResize(Box<MigrationCommand>),
    MigrateDiskAndPowerOff(Box<MigrationCommand>),
    FinishMigration(Box<MigrationCommand>),
    ConfirmMigration(Box<MigrationCommand>),
    RevertMigration(Box<MigrationCommand>),
    FinishRevertMigration(Box<MigrationCommand>),
    DropMigrationClaim(Box<MigrationCommand>),
    LiveMigrateInstance(Box<MigrationCommand>),
    RebuildInstance(Box<MigrationCommand>),
    RebuildEvacuatedInstance(Box<MigrationCommand>),
    CleanupEvacuatedInstance(Box<MigrationCommand>),
}

/// What a host did or saw while carrying out a command: topic
/// `compute-events`, written by compute agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ComputeFact {
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
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
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
    /// The driver carried the action out; the guest is now in `power_state`.
    ServerActionPerformed {
        instance_id: Uuid,
        host: String,
        action: ServerAction,
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
    },
    /// The driver failed; the guest is in `power_state` (no state when gone).
    ServerActionFailed {
        instance_id: Uuid,
        host: String,
        action: ServerAction,
        reason: String,
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
    },
    /// A snapshot (createImage's, shelve's) reached `task_state` on the
    /// host: `image_pending_upload` once the disk is copied, then
    /// `image_uploading` with the bytes stored in the image service
    /// (`size` and digests set).
    SnapshotProgressed {
        instance_id: Uuid,
        host: String,
        action: ServerAction,
        task_state: TaskState,
        size: u64,
        checksum: String,
        os_hash_value: String,
    },
    /// The guest's console output for the intent `request_id`, or why it
    /// could not be read (`error`).
    ConsoleOutputFetched {
        instance_id: Uuid,
        host: String,
        request_id: Uuid,
        output: String,
        error: Option<String>,
    },
    ResizeClaimSucceeded(Box<MigrationFact>),
    ResizeClaimFailed(Box<MigrationFact>),
    DiskMigratedAndPoweredOff(Box<MigrationFact>),
    MigrationFinishedOnDest(Box<MigrationFact>),
    MigrationConfirmedOnSource(Box<MigrationFact>),
    MigrationRevertedOnDest(Box<MigrationFact>),
    RevertFinishedOnSource(Box<MigrationFact>),
    InstanceLiveMigrated(Box<MigrationFact>),
    RebuildSpawnStarted(Box<MigrationFact>),
    InstanceRebuilt(Box<MigrationFact>),
    EvacuatedInstanceCleanedUp(Box<MigrationFact>),
    MigrationStepFailed(Box<MigrationFact>),
    /// Where a guest's VNC display listens on `host` now (`port` 0: it has
    /// none), reported before the fact of the command that started it.
    ConsoleEndpointReported {
        instance_id: Uuid,
        host: String,
        address: String,
        port: u32,
    },
    /// The power-state sync (periodic, and on agent start): the hypervisor
    /// holds the guest in `power_state` (`NoState`: it holds no such
    /// guest), which differs from what the host last recorded.
    PowerStateObserved {
        instance_id: Uuid,
        host: String,
        #[serde(with = "crate::state::power_code")]
        power_state: PowerState,
    },
}

/// Hosts' reports (registration, heartbeats) and the status operators set on
/// their compute services: topic `hosts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostEvent {
    HostRegistered(Box<HostRegistered>),
    HostHeartbeat { host: String, usage: HostUsage },
    ServiceUpdated(Box<ServiceStatus>),
    ServiceDeleted { host: String },
}

/// Flavors, images, keypairs, server groups, aggregates, quotas and revoked
/// tokens as accepted: topic `catalog`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogEvent {
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
    /// A project's own limits after a change.
    QuotaSetUpdated {
        project_id: String,
        limits: BTreeMap<String, i64>,
    },
    QuotaSetDeleted {
        project_id: String,
    },
    /// A quota class's limits after a change: every one it has set.
    QuotaClassSetUpdated {
        class_name: String,
        limits: BTreeMap<String, i64>,
    },
    /// A token refused from now on, by its audit id, until it expires.
    TokenRevoked {
        audit_id: String,
        expires_at_ms: i64,
    },
    KeypairCreated(Box<Keypair>),
    KeypairDeleted {
        user_id: String,
        name: String,
    },
    /// The whole flavor after the change.
    FlavorUpdated(Flavor),
    FlavorDeleted {
        flavor_id: String,
    },
    FlavorAccessAdded {
        flavor_id: String,
        project_id: String,
    },
    FlavorAccessRemoved {
        flavor_id: String,
        project_id: String,
    },
    // Keystone's directory (see `crate::identity`).
    DomainCreated(Box<IdentityDomain>),
    DomainUpdated(Box<IdentityDomain>),
    DomainDeleted {
        domain_id: String,
    },
    ProjectCreated(Box<IdentityProject>),
    ProjectUpdated(Box<IdentityProject>),
    ProjectDeleted {
        project_id: String,
    },
    UserCreated(Box<IdentityUser>),
    UserUpdated(Box<IdentityUser>),
    UserDeleted {
        user_id: String,
    },
    GroupCreated(Box<IdentityGroup>),
    GroupUpdated(Box<IdentityGroup>),
    GroupDeleted {
        group_id: String,
    },
    RoleCreated(Box<IdentityRole>),
    RoleUpdated(Box<IdentityRole>),
    RoleDeleted {
        role_id: String,
    },
    RoleGranted(Box<RoleGrant>),
    RoleRevoked(Box<RoleGrant>),
    GroupMemberAdded {
        group_id: String,
        user_id: String,
    },
    GroupMemberRemoved {
        group_id: String,
        user_id: String,
    },
    ApplicationCredentialCreated(Box<ApplicationCredential>),
    ApplicationCredentialDeleted {
        user_id: String,
        application_credential_id: String,
    },
}

impl Event {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Intent(e) => e.type_name(),
            Event::Instance(e) => e.type_name(),
            Event::Scheduler(e) => e.type_name(),
            Event::Compute(e) => e.type_name(),
            Event::ComputeFact(e) => e.type_name(),
            Event::Host(e) => e.type_name(),
            Event::Catalog(e) => e.type_name(),
            Event::DeadLetter(_) => "DeadLetter",
            Event::Billing(e) => e.type_name(),
        }
    }

    /// The topic the record belongs on.
    pub fn topic(&self) -> Topic {
        match self {
            Event::Intent(_) => Topic::Intent,
            Event::Instance(_) => Topic::Instance,
            Event::Scheduler(_) => Topic::Scheduler,
            Event::Compute(_) => Topic::Compute,
            Event::ComputeFact(_) => Topic::ComputeFact,
            Event::Host(_) => Topic::Host,
            Event::Catalog(_) => Topic::Catalog,
            Event::DeadLetter(_) => Topic::DeadLetter,
            Event::Billing(_) => Topic::Billing,
        }
    }
}

impl Intent {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Intent::ServerCreateRequested(_) => "ServerCreateRequested",
            Intent::ServerDeleteRequested { .. } => "ServerDeleteRequested",
            Intent::FlavorCreateRequested(_) => "FlavorCreateRequested",
            Intent::ImageCreateRequested(_) => "ImageCreateRequested",
            Intent::ImageUpdateRequested(_) => "ImageUpdateRequested",
            Intent::ImagePatchRequested(_) => "ImagePatchRequested",
            Intent::ImageUploadRequested { .. } => "ImageUploadRequested",
            Intent::ImageUploadFinishRequested(_) => "ImageUploadFinishRequested",
            Intent::ImageUploadAbortRequested { .. } => "ImageUploadAbortRequested",
            Intent::ImageDeleteRequested { .. } => "ImageDeleteRequested",
            Intent::ImageChangeRequested { .. } => "ImageChangeRequested",
            Intent::ServerGroupCreateRequested(_) => "ServerGroupCreateRequested",
            Intent::ServerGroupDeleteRequested { .. } => "ServerGroupDeleteRequested",
            Intent::AggregateCreateRequested(_) => "AggregateCreateRequested",
            Intent::AggregateUpdateRequested { .. } => "AggregateUpdateRequested",
            Intent::AggregateDeleteRequested { .. } => "AggregateDeleteRequested",
            Intent::AggregateHostAddRequested { .. } => "AggregateHostAddRequested",
            Intent::AggregateHostRemoveRequested { .. } => "AggregateHostRemoveRequested",
            Intent::AggregateMetadataSetRequested { .. } => "AggregateMetadataSetRequested",
            Intent::ServerActionRequested { .. } => "ServerActionRequested",
            Intent::ServerUpdateRequested { .. } => "ServerUpdateRequested",
            Intent::ServerMetadataChangeRequested { .. } => "ServerMetadataChangeRequested",
            Intent::ServerTagsChangeRequested { .. } => "ServerTagsChangeRequested",
            Intent::QuotaSetRequested { .. } => "QuotaSetRequested",
            Intent::QuotaResetRequested { .. } => "QuotaResetRequested",
            Intent::QuotaClassSetRequested { .. } => "QuotaClassSetRequested",
            Intent::KeypairCreateRequested(_) => "KeypairCreateRequested",
            Intent::KeypairDeleteRequested { .. } => "KeypairDeleteRequested",
            Intent::FlavorUpdateRequested(_) => "FlavorUpdateRequested",
            Intent::FlavorDeleteRequested { .. } => "FlavorDeleteRequested",
            Intent::FlavorAccessChangeRequested { .. } => "FlavorAccessChangeRequested",
            Intent::ServiceUpdateRequested(_) => "ServiceUpdateRequested",
            Intent::ServiceChangeRequested(_) => "ServiceChangeRequested",
            Intent::ServiceDeleteRequested { .. } => "ServiceDeleteRequested",
            Intent::ServerMigrationRequested(_) => "ServerMigrationRequested",
            Intent::ServerResizeConfirmRequested { .. } => "ServerResizeConfirmRequested",
            Intent::ServerResizeRevertRequested { .. } => "ServerResizeRevertRequested",
            Intent::ServerRebuildRequested(_) => "ServerRebuildRequested",
            Intent::SagaStepTimedOut { .. } => "SagaStepTimedOut",
            Intent::ConsoleTokenRequested { .. } => "ConsoleTokenRequested",
            Intent::ConsoleOutputRequested { .. } => "ConsoleOutputRequested",
        }
    }
}

impl From<Intent> for Event {
    fn from(e: Intent) -> Self {
        Event::Intent(e)
    }
}

impl InstanceEvent {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            InstanceEvent::IntentRejected { .. } => "IntentRejected",
            InstanceEvent::ConsoleOutputRead { .. } => "ConsoleOutputRead",
            InstanceEvent::InstanceCreated(_) => "InstanceCreated",
            InstanceEvent::InstanceScheduled { .. } => "InstanceScheduled",
            InstanceEvent::InstanceRescheduled { .. } => "InstanceRescheduled",
            InstanceEvent::InstanceBecameActive { .. } => "InstanceBecameActive",
            InstanceEvent::InstanceFailed { .. } => "InstanceFailed",
            InstanceEvent::InstanceDeleteStarted => "InstanceDeleteStarted",
            InstanceEvent::InstanceDeleted { .. } => "InstanceDeleted",
            InstanceEvent::InstanceTaskStarted { .. } => "InstanceTaskStarted",
            InstanceEvent::InstanceTaskCompleted { .. } => "InstanceTaskCompleted",
            InstanceEvent::InstanceTaskFailed { .. } => "InstanceTaskFailed",
            InstanceEvent::InstanceLocked { .. } => "InstanceLocked",
            InstanceEvent::InstanceUnlocked => "InstanceUnlocked",
            InstanceEvent::InstanceUpdated { .. } => "InstanceUpdated",
            InstanceEvent::InstanceMetadataSet { .. } => "InstanceMetadataSet",
            InstanceEvent::InstanceTagsSet { .. } => "InstanceTagsSet",
            InstanceEvent::MigrationStarted(_) => "MigrationStarted",
            InstanceEvent::MigrationScheduled(_) => "MigrationScheduled",
            InstanceEvent::ResizeMigrationStarted(_) => "ResizeMigrationStarted",
            InstanceEvent::ResizeMigrated(_) => "ResizeMigrated",
            InstanceEvent::ResizeFinishStarted(_) => "ResizeFinishStarted",
            InstanceEvent::ResizeFinished(_) => "ResizeFinished",
            InstanceEvent::ResizeConfirmStarted(_) => "ResizeConfirmStarted",
            InstanceEvent::ResizeConfirmed(_) => "ResizeConfirmed",
            InstanceEvent::ResizeRevertStarted(_) => "ResizeRevertStarted",
            InstanceEvent::ResizeReverted(_) => "ResizeReverted",
            InstanceEvent::MigrationAborted(_) => "MigrationAborted",
            InstanceEvent::MigrationErrored(_) => "MigrationErrored",
            InstanceEvent::LiveMigrationStarted(_) => "LiveMigrationStarted",
            InstanceEvent::LiveMigrated(_) => "LiveMigrated",
            InstanceEvent::Evacuated(_) => "Evacuated",
            InstanceEvent::RebuildStarted(_) => "RebuildStarted",
            InstanceEvent::RebuildSpawnBegan => "RebuildSpawnBegan",
            InstanceEvent::RebuildCompleted { .. } => "RebuildCompleted",
            InstanceEvent::ConsoleTokenIssued(_) => "ConsoleTokenIssued",
            InstanceEvent::InstancePowerStateSynced { .. } => "InstancePowerStateSynced",
        }
    }
}

impl From<InstanceEvent> for Event {
    fn from(e: InstanceEvent) -> Self {
        Event::Instance(e)
    }
}

impl SchedulerEvent {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SchedulerEvent::SelectHostsRequested(_) => "SelectHostsRequested",
            SchedulerEvent::HostsSelected { .. } => "HostsSelected",
            SchedulerEvent::NoValidHostFound { .. } => "NoValidHostFound",
        }
    }
}

impl From<SchedulerEvent> for Event {
    fn from(e: SchedulerEvent) -> Self {
        Event::Scheduler(e)
    }
}

impl ComputeCommand {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ComputeCommand::SpawnInstance(_) => "SpawnInstance",
            ComputeCommand::DestroyInstance { .. } => "DestroyInstance",
            ComputeCommand::PerformServerAction { .. } => "PerformServerAction",
            ComputeCommand::GetConsoleOutput { .. } => "GetConsoleOutput",
            ComputeCommand::PrepResize(_) => "PrepResize",
            ComputeCommand::MigrateDiskAndPowerOff(_) => "MigrateDiskAndPowerOff",
            ComputeCommand::FinishMigration(_) => "FinishMigration",
            ComputeCommand::ConfirmMigration(_) => "ConfirmMigration",
            ComputeCommand::RevertMigration(_) => "RevertMigration",
            ComputeCommand::FinishRevertMigration(_) => "FinishRevertMigration",
            ComputeCommand::DropMigrationClaim(_) => "DropMigrationClaim",
            ComputeCommand::LiveMigrateInstance(_) => "LiveMigrateInstance",
            ComputeCommand::RebuildInstance(_) => "RebuildInstance",
            ComputeCommand::RebuildEvacuatedInstance(_) => "RebuildEvacuatedInstance",
            ComputeCommand::CleanupEvacuatedInstance(_) => "CleanupEvacuatedInstance",
        }
    }
}

impl From<ComputeCommand> for Event {
    fn from(e: ComputeCommand) -> Self {
        Event::Compute(e)
    }
}

impl ComputeFact {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ComputeFact::ClaimSucceeded { .. } => "ClaimSucceeded",
            ComputeFact::ClaimFailed { .. } => "ClaimFailed",
            ComputeFact::InstanceSpawned { .. } => "InstanceSpawned",
            ComputeFact::SpawnFailed { .. } => "SpawnFailed",
            ComputeFact::InstanceDestroyed { .. } => "InstanceDestroyed",
            ComputeFact::ServerActionPerformed { .. } => "ServerActionPerformed",
            ComputeFact::SnapshotProgressed { .. } => "SnapshotProgressed",
            ComputeFact::ConsoleOutputFetched { .. } => "ConsoleOutputFetched",
            ComputeFact::ServerActionFailed { .. } => "ServerActionFailed",
            ComputeFact::ResizeClaimSucceeded(_) => "ResizeClaimSucceeded",
            ComputeFact::ResizeClaimFailed(_) => "ResizeClaimFailed",
            ComputeFact::DiskMigratedAndPoweredOff(_) => "DiskMigratedAndPoweredOff",
            ComputeFact::MigrationFinishedOnDest(_) => "MigrationFinishedOnDest",
            ComputeFact::MigrationConfirmedOnSource(_) => "MigrationConfirmedOnSource",
            ComputeFact::MigrationRevertedOnDest(_) => "MigrationRevertedOnDest",
            ComputeFact::RevertFinishedOnSource(_) => "RevertFinishedOnSource",
            ComputeFact::InstanceLiveMigrated(_) => "InstanceLiveMigrated",
            ComputeFact::RebuildSpawnStarted(_) => "RebuildSpawnStarted",
            ComputeFact::InstanceRebuilt(_) => "InstanceRebuilt",
            ComputeFact::EvacuatedInstanceCleanedUp(_) => "EvacuatedInstanceCleanedUp",
            ComputeFact::MigrationStepFailed(_) => "MigrationStepFailed",
            ComputeFact::ConsoleEndpointReported { .. } => "ConsoleEndpointReported",
            ComputeFact::PowerStateObserved { .. } => "PowerStateObserved",
        }
    }
}

impl From<ComputeFact> for Event {
    fn from(e: ComputeFact) -> Self {
        Event::ComputeFact(e)
    }
}

impl HostEvent {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            HostEvent::HostRegistered(_) => "HostRegistered",
            HostEvent::HostHeartbeat { .. } => "HostHeartbeat",
            HostEvent::ServiceUpdated(_) => "ServiceUpdated",
            HostEvent::ServiceDeleted { .. } => "ServiceDeleted",
        }
    }
}

impl From<HostEvent> for Event {
    fn from(e: HostEvent) -> Self {
        Event::Host(e)
    }
}

impl CatalogEvent {
    /// The record type name, as written in `Envelope.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CatalogEvent::FlavorCreated(_) => "FlavorCreated",
            CatalogEvent::ImageCreated(_) => "ImageCreated",
            CatalogEvent::ImageUpdated(_) => "ImageUpdated",
            CatalogEvent::ImageDeleted { .. } => "ImageDeleted",
            CatalogEvent::ServerGroupCreated(_) => "ServerGroupCreated",
            CatalogEvent::ServerGroupDeleted { .. } => "ServerGroupDeleted",
            CatalogEvent::AggregateCreated(_) => "AggregateCreated",
            CatalogEvent::AggregateUpdated(_) => "AggregateUpdated",
            CatalogEvent::AggregateHostAdded { .. } => "AggregateHostAdded",
            CatalogEvent::AggregateHostRemoved { .. } => "AggregateHostRemoved",
            CatalogEvent::AggregateMetadataSet(_) => "AggregateMetadataSet",
            CatalogEvent::AggregateDeleted { .. } => "AggregateDeleted",
            CatalogEvent::QuotaSetUpdated { .. } => "QuotaSetUpdated",
            CatalogEvent::QuotaSetDeleted { .. } => "QuotaSetDeleted",
            CatalogEvent::QuotaClassSetUpdated { .. } => "QuotaClassSetUpdated",
            CatalogEvent::TokenRevoked { .. } => "TokenRevoked",
            CatalogEvent::KeypairCreated(_) => "KeypairCreated",
            CatalogEvent::KeypairDeleted { .. } => "KeypairDeleted",
            CatalogEvent::FlavorUpdated(_) => "FlavorUpdated",
            CatalogEvent::FlavorDeleted { .. } => "FlavorDeleted",
            CatalogEvent::FlavorAccessAdded { .. } => "FlavorAccessAdded",
            CatalogEvent::FlavorAccessRemoved { .. } => "FlavorAccessRemoved",
            CatalogEvent::DomainCreated(_) => "DomainCreated",
            CatalogEvent::DomainUpdated(_) => "DomainUpdated",
            CatalogEvent::DomainDeleted { .. } => "DomainDeleted",
            CatalogEvent::ProjectCreated(_) => "ProjectCreated",
            CatalogEvent::ProjectUpdated(_) => "ProjectUpdated",
            CatalogEvent::ProjectDeleted { .. } => "ProjectDeleted",
            CatalogEvent::UserCreated(_) => "UserCreated",
            CatalogEvent::UserUpdated(_) => "UserUpdated",
            CatalogEvent::UserDeleted { .. } => "UserDeleted",
            CatalogEvent::GroupCreated(_) => "GroupCreated",
            CatalogEvent::GroupUpdated(_) => "GroupUpdated",
            CatalogEvent::GroupDeleted { .. } => "GroupDeleted",
            CatalogEvent::RoleCreated(_) => "RoleCreated",
            CatalogEvent::RoleUpdated(_) => "RoleUpdated",
            CatalogEvent::RoleDeleted { .. } => "RoleDeleted",
            CatalogEvent::RoleGranted(_) => "RoleGranted",
            CatalogEvent::RoleRevoked(_) => "RoleRevoked",
            CatalogEvent::GroupMemberAdded { .. } => "GroupMemberAdded",
            CatalogEvent::GroupMemberRemoved { .. } => "GroupMemberRemoved",
            CatalogEvent::ApplicationCredentialCreated(_) => "ApplicationCredentialCreated",
            CatalogEvent::ApplicationCredentialDeleted { .. } => "ApplicationCredentialDeleted",
        }
    }
}

impl From<CatalogEvent> for Event {
    fn from(e: CatalogEvent) -> Self {
        Event::Catalog(e)
    }
}
