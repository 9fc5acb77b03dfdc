//! The virt driver contract (after nova/virt/driver.py). Each method says
//! what holds afterwards and what undoes it.

use async_trait::async_trait;
use novalog_schemas::PowerState;
use novalog_schemas::events::SpawnInstance;
use uuid::Uuid;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DriverError {
    #[error("instance {0} already exists on this host")]
    InstanceExists(Uuid),
    #[error("instance {0} not found on this host")]
    InstanceNotFound(Uuid),
    #[error("{0}")]
    Failed(String),
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

    /// The guest's power state, or `None` if the host has no such guest.
    fn get_info(&self, host: &str, instance_id: Uuid) -> Option<PowerState>;

    /// A failure the operator injected for claims on `host` (fake driver
    /// only; real drivers never refuse a claim themselves).
    fn injected_claim_failure(&self, _host: &str) -> Option<String> {
        None
    }

    /// Re-adopts a guest the agent's store says exists (Nova's init_host
    /// reconciliation after an agent restart).
    fn adopt(&self, _host: &str, _instance_id: Uuid, _power: PowerState) {}
}
