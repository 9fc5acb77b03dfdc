//! The virt driver contract (after nova/virt/driver.py). Each method says
//! what holds afterwards and what undoes it.

use async_trait::async_trait;
use novalog_schemas::PowerState;
use novalog_schemas::events::SpawnInstance;
use novalog_schemas::migration::MigrationCommand;
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DriverError {
    #[error("instance {0} already exists on this host")]
    InstanceExists(Uuid),
    #[error("instance {0} not found on this host")]
    InstanceNotFound(Uuid),
    #[error("{0}")]
    Failed(String),
    /// The call never came back (fake driver's injected silence): the
    /// agent reports nothing, as a host that hangs or dies would.
    #[error("no answer")]
    Silent,
}

#[async_trait]
pub trait VirtDriver: Send + Sync + 'static {
    /// Short name reported on `hosts` (`fake`, `libvirt`).
    fn name(&self) -> &'static str;

    /// Creates and boots the guest on `host`. Afterwards the guest exists
    /// and its power state is returned (running). Undone by [`destroy`].
    /// On error nothing of the guest remains.
    ///
    /// [`destroy`]: VirtDriver::destroy
    async fn spawn(&self, host: &str, instance: &SpawnInstance) -> Result<PowerState, DriverError>;

    /// Powers off and removes the guest and its disks. Afterwards the guest
    /// does not exist; destroying a guest that does not exist succeeds.
    async fn destroy(&self, host: &str, instance_id: Uuid) -> Result<(), DriverError>;

    /// Boots the guest from the rescue image `image_id` with its own disk
    /// attached (Nova's `rescue`). Afterwards it runs from the rescue
    /// image; undone by [`VirtDriver::unrescue`]. By default a hard
    /// reboot: a driver without rescue disks of its own keeps the guest's.
    async fn rescue(
        &self,
        host: &str,
        instance_id: Uuid,
        _image_id: Uuid,
    ) -> Result<PowerState, DriverError> {
        self.reboot(host, instance_id, true).await
    }

    /// Boots the rescued guest from its own disk again (Nova's
    /// `unrescue`). Afterwards it is running as before the rescue.
    async fn unrescue(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        self.reboot(host, instance_id, true).await
    }

    /// Copies the guest's disk into the image `image_id` (Nova's
    /// `snapshot`) and stores it in the image service; returns the stored
    /// bytes' size and digests. The guest is left as it was. On error no
    /// part of the image's bytes is stored. By default there is no disk to
    /// copy.
    async fn snapshot(
        &self,
        _host: &str,
        instance_id: Uuid,
        _image_id: Uuid,
    ) -> Result<crate::snapshot::Stored, DriverError> {
        Err(DriverError::Failed(format!(
            "{} cannot snapshot instance {instance_id}",
            self.name()
        )))
    }

    /// The guest's console log as the hypervisor kept it (Nova's
    /// `get_console_output`), all of it. Changes nothing.
    async fn get_console_output(
        &self,
        _host: &str,
        _instance_id: Uuid,
    ) -> Result<Vec<u8>, DriverError> {
        Err(DriverError::Failed(
            "Guest does not have a console available.".into(),
        ))
    }

    /// Injects an NMI into the guest (Nova's `trigger_crash_dump`); the
    /// guest's kernel decides what follows (a dump, a panic). Not undone.
    async fn trigger_crash_dump(&self, _host: &str, instance_id: Uuid) -> Result<(), DriverError> {
        Err(DriverError::Failed(format!(
            "Triggering a crash dump is not supported for instance {instance_id} by the {} driver",
            self.name()
        )))
    }

    /// Reboots the guest (`hard`: reset rather than ask the guest OS).
    /// Afterwards it is running. On error the guest may be in any state;
    /// `get_info` says which.
    async fn reboot(
        &self,
        host: &str,
        instance_id: Uuid,
        hard: bool,
    ) -> Result<PowerState, DriverError>;

    /// Powers the guest off. Afterwards it is shut down; undone by
    /// [`power_on`](VirtDriver::power_on).
    async fn power_off(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError>;

    /// Powers the guest on. Afterwards it is running.
    async fn power_on(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError>;

    /// Pauses the guest in memory. Afterwards it is paused; undone by
    /// [`unpause`](VirtDriver::unpause).
    async fn pause(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError>;

    /// Afterwards the paused guest runs again.
    async fn unpause(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError>;

    /// Saves the guest's memory to disk and stops it. Afterwards it is
    /// suspended; undone by [`resume`](VirtDriver::resume).
    async fn suspend(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError>;

    /// Afterwards the suspended guest runs again.
    async fn resume(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError>;

    /// Where the guest's VNC display listens on `host` (Nova's
    /// `get_vnc_console`), or `None` when it has none: not running or
    /// paused, or the host gives guests no display. A display outlives
    /// nothing of its guest: afterwards it exists as long as the guest runs.
    async fn console_endpoint(
        &self,
        _host: &str,
        _instance_id: Uuid,
    ) -> Option<novalog_schemas::console::ConsoleEndpoint> {
        None
    }

    /// The guest's power state, or `None` if the host has no such guest.
    fn get_info(&self, host: &str, instance_id: Uuid) -> Option<PowerState>;

    /// A failure the operator injected for claims on `host` (fake driver
    /// only; real drivers never refuse a claim themselves).
    fn injected_claim_failure(&self, _host: &str) -> Option<String> {
        None
    }

    /// The guests the hypervisor holds on `host` (Nova's
    /// `list_instances`). A driver that cannot list them returns none, and
    /// then nothing is reconciled on start.
    fn guests(&self, _host: &str) -> Vec<Uuid> {
        Vec::new()
    }

    /// Re-adopts a guest the agent's store says exists (Nova's init_host
    /// reconciliation after an agent restart).
    fn adopt(&self, _host: &str, _instance_id: Uuid, _power: PowerState) {}

    /// What the host has, read from the hypervisor (Nova's
    /// `get_available_resource`); `None`: the configured capacity counts.
    fn available_resource(&self, _host: &str) -> Option<novalog_schemas::Resources> {
        None
    }

    /// One run of the image cache manager: removes base images no guest
    /// uses once they are old enough; returns what it removed. Drivers
    /// without an image cache have nothing to do.
    async fn manage_image_cache(&self) -> Result<Vec<String>, DriverError> {
        Ok(Vec::new())
    }

    /// A failure the operator injected for `step` (a saga step without a
    /// driver call of its own, like `prep_resize`'s claim) on `host`.
    fn injected_step_failure(&self, _step: &str, _host: &str) -> Result<(), DriverError> {
        Ok(())
    }

    /// On the source (`cmd.source_host`): powers the guest off and copies
    /// its disk to `cmd.dest_host`, resized for `cmd.flavor`. Afterwards
    /// the source guest is shut down and the destination can finish.
    /// On error the source guest is as it was. Undone by
    /// [`finish_revert_migration`].
    ///
    /// [`finish_revert_migration`]: VirtDriver::finish_revert_migration
    async fn migrate_disk_and_power_off(&self, cmd: &MigrationCommand) -> Result<(), DriverError>;

    /// On the destination: creates the guest from the migrated disk with
    /// `cmd.flavor`, powered on if `cmd.power_on`. Afterwards it exists on
    /// the destination; on error nothing of it is left there. Undone by
    /// [`revert_migration`].
    ///
    /// [`revert_migration`]: VirtDriver::revert_migration
    async fn finish_migration(&self, cmd: &MigrationCommand) -> Result<PowerState, DriverError>;

    /// On the source after the user confirmed: the source guest and its
    /// disks are gone. Not undoable.
    async fn confirm_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError>;

    /// On the destination when reverting: the destination guest is gone
    /// (a same-host resize keeps the guest for the source to restore).
    async fn revert_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError>;

    /// On the source when reverting (or compensating): the guest runs
    /// again with its old flavor, powered on if `cmd.power_on`.
    async fn finish_revert_migration(
        &self,
        cmd: &MigrationCommand,
    ) -> Result<PowerState, DriverError>;

    /// On the source: moves the running (or paused) guest to
    /// `cmd.dest_host` without stopping it. Afterwards it runs there, as it
    /// was, and not on the source; on error it is still on the source.
    async fn live_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError>;

    /// Re-creates the guest on its host from `cmd.image`, keeping its
    /// identity; afterwards it is powered on if `cmd.power_on`. On error
    /// the guest may be gone (the instance goes to ERROR).
    async fn rebuild(&self, cmd: &MigrationCommand) -> Result<PowerState, DriverError>;
}
