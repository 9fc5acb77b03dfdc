//! The fake virt driver (after nova/virt/fake.py): guests live in memory.
//! First-class for tests and benchmarks: configurable latency, failure
//! injection per host, and a count of every spawn so a test can prove no
//! guest was ever spawned twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use novalog_schemas::PowerState;
use novalog_schemas::events::SpawnInstance;
use novalog_schemas::migration::MigrationCommand;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::driver::{DriverError, VirtDriver};

#[derive(Debug, Clone, Default)]
pub struct FakeOptions {
    /// Time each spawn takes.
    pub spawn_latency: Duration,
    /// Hosts whose every claim fails.
    pub fail_claims: HashSet<String>,
    /// Hosts whose every spawn fails.
    pub fail_spawns: HashSet<String>,
    /// Saga steps that fail, by step (`prep_resize`,
    /// `migrate_disk_and_power_off`, `finish_migration`,
    /// `confirm_migration`, `revert_migration`, `finish_revert_migration`,
    /// `rebuild`) → hosts (`*`: every host).
    pub fail_steps: HashMap<String, HashSet<String>>,
    /// Saga steps that never answer, likewise (a host that hangs).
    pub silent_steps: HashMap<String, HashSet<String>>,
    /// Time each saga step (migrate disk, finish, confirm, revert, live
    /// migration) takes.
    pub step_latency: Duration,
    /// Time each server action (reboot, power off/on, pause, ...) takes.
    pub action_latency: Duration,
    /// Hosts whose every server action fails. A failed reboot leaves the
    /// guest shut down; any other failed action leaves it as it was.
    pub fail_actions: HashSet<String>,
    /// Each running (or paused) guest gets a VNC display of its own
    /// ([`crate::fake_vnc`]) on 127.0.0.1 (`[vnc] enabled`).
    pub vnc: bool,
    /// The image service's store: where a snapshot's bytes go, and where
    /// the bytes of the image a guest booted from are read (`None`: a
    /// snapshot is digested but kept nowhere, as in a replay).
    pub image_store: Option<std::path::PathBuf>,
}

#[derive(Default)]
pub struct FakeDriver {
    opts: FakeOptions,
    guests: Mutex<HashMap<(String, Uuid), PowerState>>,
    spawns: Mutex<HashMap<Uuid, u32>>,
    /// Step failures injected at run time, as `fail_steps`.
    fail_steps: Mutex<HashMap<String, HashSet<String>>>,
    silent_steps: Mutex<HashMap<String, HashSet<String>>>,
    rebuilds: Mutex<HashMap<Uuid, u32>>,
    /// The VNC display of each guest asked for one, while it runs.
    displays: Mutex<HashMap<(String, Uuid), crate::fake_vnc::Display>>,
    /// Each guest's serial console log (what its OS printed), and the
    /// image its disk was made from: the guest's disk is that image's
    /// bytes followed by its console log, which is what a snapshot copies.
    consoles: Mutex<HashMap<Uuid, FakeConsole>>,
}

/// A fake guest's disk origin and console.
#[derive(Debug, Clone, Default)]
struct FakeConsole {
    image_id: Uuid,
    log: Vec<u8>,
}

/// What a fake guest prints as it boots.
fn boot_lines(instance_id: Uuid, image: &str) -> String {
    format!(
        "[    0.000000] Linux version 6.1.0-fake (novalog fake driver)\n\
         [    0.000000] Command line: root=/dev/vda1 console=ttyS0\n\
         [    1.000000] Booting from {image}\n\
         cloud-init: instance {instance_id} up\n\
         \n\
         {} login: \n",
        &instance_id.simple().to_string()[..8]
    )
}

impl FakeDriver {
    pub fn new(opts: FakeOptions) -> Self {
        FakeDriver {
            fail_steps: Mutex::new(opts.fail_steps.clone()),
            silent_steps: Mutex::new(opts.silent_steps.clone()),
            opts,
            ..Default::default()
        }
    }

    /// From now on `step` fails on `host` (`*`: every host).
    pub fn fail_step(&self, step: &str, host: &str) {
        self.fail_steps
            .lock()
            .entry(step.to_owned())
            .or_default()
            .insert(host.to_owned());
    }

    /// From now on `step` never answers on `host` (`*`: every host).
    pub fn silence_step(&self, step: &str, host: &str) {
        self.silent_steps
            .lock()
            .entry(step.to_owned())
            .or_default()
            .insert(host.to_owned());
    }

    /// Every injected step failure and silence is lifted.
    pub fn heal(&self) {
        self.fail_steps.lock().clear();
        self.silent_steps.lock().clear();
    }

    /// How many times `instance` was rebuilt (forgotten once no host
    /// holds it).
    pub fn rebuild_count(&self, instance: Uuid) -> u32 {
        self.rebuilds.lock().get(&instance).copied().unwrap_or(0)
    }

    /// Hosts where `instance` has a running guest.
    pub fn running_on(&self, instance: Uuid) -> Vec<String> {
        self.guests
            .lock()
            .iter()
            .filter(|((_, id), p)| *id == instance && **p == PowerState::Running)
            .map(|((h, _), _)| h.clone())
            .collect()
    }

    fn check(&self, step: &str, host: &str) -> Result<(), DriverError> {
        let hit = |m: &HashMap<String, HashSet<String>>| {
            m.get(step)
                .is_some_and(|hosts| hosts.contains(host) || hosts.contains("*"))
        };
        if hit(&self.silent_steps.lock()) {
            return Err(DriverError::Silent);
        }
        if hit(&self.fail_steps.lock()) {
            return Err(DriverError::Failed(format!(
                "injected {step} failure on {host}"
            )));
        }
        Ok(())
    }

    async fn step_delay(&self) {
        if !self.opts.step_latency.is_zero() {
            tokio::time::sleep(self.opts.step_latency).await;
        }
    }

    fn power(on: bool) -> PowerState {
        if on {
            PowerState::Running
        } else {
            PowerState::Shutdown
        }
    }

    /// How many times `instance` was spawned, on any host (forgotten once
    /// no host holds it).
    pub fn spawn_count(&self, instance: Uuid) -> u32 {
        self.spawns.lock().get(&instance).copied().unwrap_or(0)
    }

    /// Moves the guest from one of `from` to `to` after the action
    /// latency (a guest already in `to` stays there: carrying a command
    /// out twice is harmless), or fails as injected (the guest then in
    /// `on_failure`, or unchanged).
    async fn transition(
        &self,
        host: &str,
        instance_id: Uuid,
        what: &str,
        from: &[PowerState],
        to: PowerState,
        on_failure: Option<PowerState>,
    ) -> Result<PowerState, DriverError> {
        let key = (host.to_owned(), instance_id);
        if !self.guests.lock().contains_key(&key) {
            return Err(DriverError::InstanceNotFound(instance_id));
        }
        if !self.opts.action_latency.is_zero() {
            tokio::time::sleep(self.opts.action_latency).await;
        }
        let mut guests = self.guests.lock();
        let Some(power) = guests.get_mut(&key) else {
            return Err(DriverError::InstanceNotFound(instance_id));
        };
        if self.opts.fail_actions.contains(host) {
            if let Some(p) = on_failure {
                *power = p;
            }
            return Err(DriverError::Failed(format!(
                "injected {what} failure on {host}"
            )));
        }
        // Already there: a redelivered command converges, it does not fail.
        if *power == to {
            return Ok(to);
        }
        if !from.contains(power) {
            return Err(DriverError::Failed(format!(
                "cannot {what} a guest in power state {:?}",
                *power
            )));
        }
        let was = *power;
        *power = to;
        drop(guests);
        if was != to {
            self.console_after(instance_id, what, to);
        }
        Ok(to)
    }

    /// Entries the driver holds in memory: guests, and spawn and rebuild
    /// counts. Bounded by the live guests (tests check it returns to
    /// that after create/delete cycles).
    pub fn remembered(&self) -> usize {
        self.guests.lock().len() + self.spawns.lock().len() + self.rebuilds.lock().len()
    }

    /// Appends `text` to the guest's console log.
    fn console(&self, instance_id: Uuid, text: &str) {
        self.consoles
            .lock()
            .entry(instance_id)
            .or_default()
            .log
            .extend_from_slice(text.as_bytes());
    }

    /// The guest's console log, what the guest printed (tests).
    pub fn console_log(&self, instance_id: Uuid) -> String {
        self.consoles
            .lock()
            .get(&instance_id)
            .map(|c| String::from_utf8_lossy(&c.log).into_owned())
            .unwrap_or_default()
    }

    /// What the guest's console shows after a power transition to `to`.
    fn console_after(&self, instance_id: Uuid, what: &str, to: PowerState) {
        let text = match (what, to) {
            ("reboot", PowerState::Running) | ("power on", PowerState::Running) => {
                let image = self
                    .consoles
                    .lock()
                    .get(&instance_id)
                    .map(|c| c.image_id.to_string())
                    .unwrap_or_default();
                let head = if what == "reboot" {
                    "reboot: Restarting system\n"
                } else {
                    ""
                };
                format!("{head}{}", boot_lines(instance_id, &image))
            }
            (_, PowerState::Shutdown) => "reboot: Power down\n".to_owned(),
            // Paused and suspended guests print nothing.
            _ => return,
        };
        self.console(instance_id, &text);
    }

    /// Guests on `host`.
    pub fn guests_on(&self, host: &str) -> usize {
        self.guests.lock().keys().filter(|(h, _)| h == host).count()
    }
}

#[async_trait]
impl VirtDriver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn spawn(&self, host: &str, instance: &SpawnInstance) -> Result<PowerState, DriverError> {
        let key = (host.to_owned(), instance.instance_id);
        if self.guests.lock().contains_key(&key) {
            return Err(DriverError::InstanceExists(instance.instance_id));
        }
        if !self.opts.spawn_latency.is_zero() {
            tokio::time::sleep(self.opts.spawn_latency).await;
        }
        self.check("spawn", host)?;
        if self.opts.fail_spawns.contains(host) {
            return Err(DriverError::Failed(format!(
                "injected spawn failure on {host}"
            )));
        }
        *self.spawns.lock().entry(instance.instance_id).or_default() += 1;
        self.guests.lock().insert(key, PowerState::Running);
        let id = instance.instance_id;
        self.consoles.lock().insert(
            id,
            FakeConsole {
                image_id: instance.image.id,
                log: boot_lines(id, &instance.image.id.to_string()).into_bytes(),
            },
        );
        Ok(PowerState::Running)
    }

    async fn destroy(&self, host: &str, instance_id: Uuid) -> Result<(), DriverError> {
        self.displays.lock().remove(&(host.to_owned(), instance_id));
        let mut guests = self.guests.lock();
        guests.remove(&(host.to_owned(), instance_id));
        // The counters of an instance no host holds any more go with it:
        // memory follows the live guests, not every guest ever spawned.
        if !guests.keys().any(|(_, id)| *id == instance_id) {
            self.spawns.lock().remove(&instance_id);
            self.rebuilds.lock().remove(&instance_id);
            self.consoles.lock().remove(&instance_id);
        }
        Ok(())
    }

    /// The guest's disk: the bytes of the image it was made from (when the
    /// store has them) followed by its console log, what the fake guest
    /// keeps.
    async fn snapshot(
        &self,
        host: &str,
        instance_id: Uuid,
        image_id: Uuid,
    ) -> Result<crate::snapshot::Stored, DriverError> {
        if !self
            .guests
            .lock()
            .contains_key(&(host.to_owned(), instance_id))
        {
            return Err(DriverError::InstanceNotFound(instance_id));
        }
        self.step_delay().await;
        self.check("snapshot", host)?;
        let console = self
            .consoles
            .lock()
            .get(&instance_id)
            .cloned()
            .unwrap_or_default();
        let store = self
            .opts
            .image_store
            .clone()
            .map(crate::snapshot::ImageStore);
        let mut disk = store
            .as_ref()
            .and_then(|s| s.read(console.image_id))
            .unwrap_or_default();
        disk.extend_from_slice(&console.log);
        match store {
            Some(store) => tokio::task::spawn_blocking(move || store.put(image_id, &disk))
                .await
                .map_err(|e| DriverError::Failed(e.to_string()))?,
            None => {
                crate::snapshot::digest(&disk[..]).map_err(|e| DriverError::Failed(e.to_string()))
            }
        }
    }

    async fn get_console_output(
        &self,
        host: &str,
        instance_id: Uuid,
    ) -> Result<Vec<u8>, DriverError> {
        if !self
            .guests
            .lock()
            .contains_key(&(host.to_owned(), instance_id))
        {
            return Err(DriverError::InstanceNotFound(instance_id));
        }
        Ok(self
            .consoles
            .lock()
            .get(&instance_id)
            .map(|c| c.log.clone())
            .unwrap_or_default())
    }

    /// The NMI reaches a running guest's kernel, which panics (and dumps,
    /// where kdump is set up); the guest is then crashed.
    async fn trigger_crash_dump(&self, host: &str, instance_id: Uuid) -> Result<(), DriverError> {
        let key = (host.to_owned(), instance_id);
        let mut guests = self.guests.lock();
        let Some(power) = guests.get_mut(&key) else {
            return Err(DriverError::InstanceNotFound(instance_id));
        };
        if *power != PowerState::Running {
            return Err(DriverError::Failed(format!(
                "Instance {instance_id} is not running."
            )));
        }
        *power = PowerState::Crashed;
        drop(guests);
        self.console(
            instance_id,
            "Uhhuh. NMI received for unknown reason 3c on CPU 0.\n\
             Kernel panic - not syncing: NMI: Not continuing\n",
        );
        Ok(())
    }

    async fn reboot(
        &self,
        host: &str,
        instance_id: Uuid,
        hard: bool,
    ) -> Result<PowerState, DriverError> {
        use PowerState::*;
        // A soft reboot needs a running guest OS; a hard one resets anything.
        let from: &[PowerState] = if hard {
            &[Running, Paused, Shutdown, Crashed, Suspended, NoState]
        } else {
            &[Running]
        };
        self.transition(host, instance_id, "reboot", from, Running, Some(Shutdown))
            .await
    }

    async fn power_off(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        use PowerState::*;
        let from = &[Running, Paused, Shutdown, Crashed, Suspended, NoState];
        self.transition(host, instance_id, "power off", from, Shutdown, None)
            .await
    }

    async fn power_on(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        use PowerState::*;
        let from = &[Running, Shutdown, Crashed, NoState];
        self.transition(host, instance_id, "power on", from, Running, None)
            .await
    }

    async fn pause(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let from = &[PowerState::Running];
        self.transition(host, instance_id, "pause", from, PowerState::Paused, None)
            .await
    }

    async fn unpause(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let from = &[PowerState::Paused];
        self.transition(
            host,
            instance_id,
            "unpause",
            from,
            PowerState::Running,
            None,
        )
        .await
    }

    async fn suspend(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let from = &[PowerState::Running];
        self.transition(
            host,
            instance_id,
            "suspend",
            from,
            PowerState::Suspended,
            None,
        )
        .await
    }

    async fn resume(&self, host: &str, instance_id: Uuid) -> Result<PowerState, DriverError> {
        let from = &[PowerState::Suspended];
        self.transition(host, instance_id, "resume", from, PowerState::Running, None)
            .await
    }

    async fn console_endpoint(
        &self,
        host: &str,
        instance_id: Uuid,
    ) -> Option<novalog_schemas::console::ConsoleEndpoint> {
        if !self.opts.vnc {
            return None;
        }
        // Displays of guests that stopped running or left go first.
        let live: HashSet<(String, Uuid)> = self
            .guests
            .lock()
            .iter()
            .filter(|(_, p)| matches!(p, PowerState::Running | PowerState::Paused))
            .map(|(k, _)| k.clone())
            .collect();
        let mut displays = self.displays.lock();
        displays.retain(|k, _| live.contains(k));
        let key = (host.to_owned(), instance_id);
        if !live.contains(&key) {
            return None;
        }
        if !displays.contains_key(&key) {
            match crate::fake_vnc::start(format!("instance-{instance_id}")) {
                Ok(d) => {
                    displays.insert(key.clone(), d);
                }
                Err(e) => {
                    tracing::warn!(%host, %instance_id, error = %e, "fake display did not start");
                    return None;
                }
            }
        }
        displays
            .get(&key)
            .map(|d| novalog_schemas::console::ConsoleEndpoint {
                address: d.addr.ip().to_string(),
                port: d.addr.port(),
            })
    }

    fn get_info(&self, host: &str, instance_id: Uuid) -> Option<PowerState> {
        self.guests
            .lock()
            .get(&(host.to_owned(), instance_id))
            .copied()
    }

    fn injected_claim_failure(&self, host: &str) -> Option<String> {
        self.opts
            .fail_claims
            .contains(host)
            .then(|| format!("injected claim failure on {host}"))
    }

    fn guests(&self, host: &str) -> Vec<Uuid> {
        self.guests
            .lock()
            .keys()
            .filter(|(h, _)| h == host)
            .map(|(_, id)| *id)
            .collect()
    }

    fn adopt(&self, host: &str, instance_id: Uuid, power: PowerState) {
        self.guests
            .lock()
            .insert((host.to_owned(), instance_id), power);
    }

    fn injected_step_failure(&self, step: &str, host: &str) -> Result<(), DriverError> {
        self.check(step, host)
    }

    async fn migrate_disk_and_power_off(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        self.step_delay().await;
        self.check("migrate_disk_and_power_off", &cmd.host)?;
        let mut g = self.guests.lock();
        match g.get_mut(&(cmd.host.clone(), cmd.instance_id)) {
            Some(p) => {
                *p = PowerState::Shutdown;
                Ok(())
            }
            None => Err(DriverError::InstanceNotFound(cmd.instance_id)),
        }
    }

    async fn finish_migration(&self, cmd: &MigrationCommand) -> Result<PowerState, DriverError> {
        self.step_delay().await;
        self.check("finish_migration", &cmd.host)?;
        let mut g = self.guests.lock();
        let key = (cmd.host.clone(), cmd.instance_id);
        // A guest that arrived live keeps its power state.
        if cmd.source_host != cmd.dest_host
            && let Some(p) = g.get(&key)
        {
            return Ok(*p);
        }
        let p = Self::power(cmd.power_on);
        g.insert(key, p);
        Ok(p)
    }

    async fn live_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        self.step_delay().await;
        self.check("live_migration", &cmd.host)?;
        let mut g = self.guests.lock();
        let p = g
            .remove(&(cmd.source_host.clone(), cmd.instance_id))
            .ok_or(DriverError::InstanceNotFound(cmd.instance_id))?;
        g.insert((cmd.dest_host.clone(), cmd.instance_id), p);
        Ok(())
    }

    async fn confirm_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        self.step_delay().await;
        self.check("confirm_migration", &cmd.host)?;
        if cmd.source_host != cmd.dest_host {
            self.guests
                .lock()
                .remove(&(cmd.host.clone(), cmd.instance_id));
        }
        Ok(())
    }

    async fn revert_migration(&self, cmd: &MigrationCommand) -> Result<(), DriverError> {
        self.step_delay().await;
        self.check("revert_migration", &cmd.host)?;
        if cmd.source_host != cmd.dest_host {
            self.guests
                .lock()
                .remove(&(cmd.host.clone(), cmd.instance_id));
        }
        Ok(())
    }

    async fn finish_revert_migration(
        &self,
        cmd: &MigrationCommand,
    ) -> Result<PowerState, DriverError> {
        self.step_delay().await;
        self.check("finish_revert_migration", &cmd.host)?;
        let p = Self::power(cmd.power_on);
        self.guests
            .lock()
            .insert((cmd.host.clone(), cmd.instance_id), p);
        Ok(p)
    }

    async fn rebuild(&self, cmd: &MigrationCommand) -> Result<PowerState, DriverError> {
        let key = (cmd.host.clone(), cmd.instance_id);
        if !self.guests.lock().contains_key(&key) {
            return Err(DriverError::InstanceNotFound(cmd.instance_id));
        }
        if !self.opts.spawn_latency.is_zero() {
            tokio::time::sleep(self.opts.spawn_latency).await;
        }
        if let Err(e) = self.check("rebuild", &cmd.host) {
            if e != DriverError::Silent {
                self.guests.lock().remove(&key);
            }
            return Err(e);
        }
        let p = Self::power(cmd.power_on);
        self.guests.lock().insert(key, p);
        *self.rebuilds.lock().entry(cmd.instance_id).or_default() += 1;
        // A new disk from the rebuild's image, and a fresh console.
        let id = cmd.instance_id;
        let log = if cmd.power_on {
            boot_lines(id, &cmd.image.id.to_string()).into_bytes()
        } else {
            Vec::new()
        };
        self.consoles.lock().insert(
            id,
            FakeConsole {
                image_id: cmd.image.id,
                log,
            },
        );
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: Uuid) -> SpawnInstance {
        SpawnInstance {
            instance_id: id,
            host: "h".into(),
            attempt: 1,
            project_id: "p".into(),
            name: "vm".into(),
            flavor: novalog_schemas::Flavor {
                id: "1".into(),
                name: "m1.tiny".into(),
                vcpus: 1,
                ram_mb: 512,
                disk_gb: 1,
                ephemeral_gb: 0,
                swap_mb: 0,
                rxtx_factor: 1.0,
                is_public: true,
                extra_specs: Default::default(),
                description: None,
            },
            image: novalog_schemas::Image {
                id: Uuid::nil(),
                name: "cirros".into(),
                status: "active".into(),
                size: 0,
                min_disk: 0,
                min_ram: 0,
                disk_format: "qcow2".into(),
                container_format: "bare".into(),
                properties: Default::default(),
                owner: String::new(),
                checksum: String::new(),
                visibility: "public".into(),
                created_at_ms: 0,
                protected: false,
                tags: Vec::new(),
                os_hash_value: String::new(),
                updated_at_ms: 0,
                members: Vec::new(),
            },
        }
    }

    #[tokio::test]
    async fn the_console_tells_the_guests_life_and_a_snapshot_is_its_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("images");
        std::fs::create_dir_all(&store).unwrap();
        // The image the guest boots from has bytes in the store.
        std::fs::write(store.join(Uuid::nil().to_string()), b"BASE").unwrap();
        let d = FakeDriver::new(FakeOptions {
            image_store: Some(store.clone()),
            ..FakeOptions::default()
        });
        let id = Uuid::new_v4();
        d.spawn("h", &cmd(id)).await.unwrap();
        assert!(
            d.console_log(id).ends_with("login: \n"),
            "{}",
            d.console_log(id)
        );
        d.power_off("h", id).await.unwrap();
        assert!(d.console_log(id).ends_with("reboot: Power down\n"));
        d.power_on("h", id).await.unwrap();
        // A stopped-then-started guest booted twice.
        assert_eq!(d.console_log(id).matches("login:").count(), 2);
        let log = d.get_console_output("h", id).await.unwrap();
        assert_eq!(log, d.console_log(id).into_bytes());

        let snap = Uuid::new_v4();
        let stored = d.snapshot("h", id, snap).await.unwrap();
        let bytes = std::fs::read(store.join(snap.to_string())).unwrap();
        assert!(bytes.starts_with(b"BASE"));
        assert!(bytes.ends_with(&log));
        assert_eq!(stored.size, bytes.len() as u64);
        assert_eq!(stored, crate::snapshot::digest(&bytes[..]).unwrap());
        assert!(d.snapshot("h", Uuid::new_v4(), snap).await.is_err());

        // The NMI panics a running guest's kernel: it is crashed.
        d.trigger_crash_dump("h", id).await.unwrap();
        assert_eq!(d.get_info("h", id), Some(PowerState::Crashed));
        assert!(
            d.console_log(id)
                .contains("Kernel panic - not syncing: NMI")
        );
        assert!(d.trigger_crash_dump("h", id).await.is_err(), "not running");
        d.destroy("h", id).await.unwrap();
        assert_eq!(d.console_log(id), "", "forgotten with the guest");
    }

    #[tokio::test]
    async fn spawn_destroy_and_refuse_a_second_spawn() {
        let d = FakeDriver::new(FakeOptions::default());
        let id = Uuid::new_v4();
        assert_eq!(d.spawn("h", &cmd(id)).await, Ok(PowerState::Running));
        assert_eq!(
            d.spawn("h", &cmd(id)).await,
            Err(DriverError::InstanceExists(id))
        );
        assert_eq!(d.spawn_count(id), 1);
        assert_eq!(d.get_info("h", id), Some(PowerState::Running));
        d.destroy("h", id).await.unwrap();
        assert_eq!(d.get_info("h", id), None);
        d.destroy("h", id).await.unwrap();
    }

    #[tokio::test]
    async fn deleted_guests_leave_no_trace_in_memory() {
        let d = FakeDriver::new(FakeOptions::default());
        let keep = Uuid::new_v4();
        d.spawn("h", &cmd(keep)).await.unwrap();
        let live = d.remembered();
        for n in 0..200 {
            let id = Uuid::new_v4();
            d.spawn("h", &cmd(id)).await.unwrap();
            if n % 2 == 0 {
                let spawned = cmd(id);
                let mut rebuild = MigrationCommand {
                    instance_id: id,
                    migration_id: Uuid::new_v4(),
                    host: "h".into(),
                    source_host: "h".into(),
                    dest_host: "h".into(),
                    attempt: 1,
                    flavor: spawned.flavor,
                    image: spawned.image,
                    name: spawned.name,
                    project_id: spawned.project_id,
                    power_on: true,
                };
                d.rebuild(&rebuild).await.unwrap();
                // Moved to another host, as a live migration does.
                rebuild.source_host = "h".into();
                rebuild.dest_host = "h2".into();
                d.live_migration(&rebuild).await.unwrap();
                d.destroy("h2", id).await.unwrap();
            } else {
                d.destroy("h", id).await.unwrap();
            }
        }
        assert_eq!(d.remembered(), live, "only the live guest is remembered");
        assert_eq!(d.spawn_count(keep), 1);
    }

    #[tokio::test]
    async fn injected_failures() {
        let d = FakeDriver::new(FakeOptions {
            fail_spawns: HashSet::from(["bad".to_string()]),
            fail_claims: HashSet::from(["full".to_string()]),
            ..Default::default()
        });
        let id = Uuid::new_v4();
        assert!(d.spawn("bad", &cmd(id)).await.is_err());
        assert_eq!(d.get_info("bad", id), None, "a failed spawn leaves nothing");
        assert!(d.injected_claim_failure("full").is_some());
        assert!(d.injected_claim_failure("bad").is_none());
    }

    #[tokio::test]
    async fn power_actions_move_the_guest_and_refuse_impossible_ones() {
        let d = FakeDriver::new(FakeOptions::default());
        let id = Uuid::new_v4();
        assert_eq!(
            d.pause("h", id).await,
            Err(DriverError::InstanceNotFound(id))
        );
        d.spawn("h", &cmd(id)).await.unwrap();
        assert_eq!(d.pause("h", id).await, Ok(PowerState::Paused));
        assert_eq!(d.get_info("h", id), Some(PowerState::Paused));
        assert_eq!(
            d.pause("h", id).await,
            Ok(PowerState::Paused),
            "a redelivered pause converges"
        );
        assert!(d.suspend("h", id).await.is_err(), "a paused guest");
        assert!(
            d.reboot("h", id, false).await.is_err(),
            "soft needs running"
        );
        assert_eq!(d.unpause("h", id).await, Ok(PowerState::Running));
        assert_eq!(d.suspend("h", id).await, Ok(PowerState::Suspended));
        assert_eq!(d.resume("h", id).await, Ok(PowerState::Running));
        assert_eq!(d.power_off("h", id).await, Ok(PowerState::Shutdown));
        assert_eq!(d.get_info("h", id), Some(PowerState::Shutdown));
        assert_eq!(d.reboot("h", id, true).await, Ok(PowerState::Running));
        assert_eq!(d.power_off("h", id).await, Ok(PowerState::Shutdown));
        assert_eq!(d.power_on("h", id).await, Ok(PowerState::Running));
    }

    #[tokio::test]
    async fn injected_action_failures() {
        let d = FakeDriver::new(FakeOptions {
            fail_actions: HashSet::from(["bad".to_string()]),
            ..Default::default()
        });
        let id = Uuid::new_v4();
        d.spawn("bad", &cmd(id)).await.unwrap();
        assert!(d.pause("bad", id).await.is_err());
        assert_eq!(
            d.get_info("bad", id),
            Some(PowerState::Running),
            "unchanged"
        );
        assert!(d.reboot("bad", id, true).await.is_err());
        assert_eq!(
            d.get_info("bad", id),
            Some(PowerState::Shutdown),
            "a failed reboot leaves the guest down"
        );
    }
}
