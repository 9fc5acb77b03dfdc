//! Commands for one host, carried out in order: claim, then drive the virt
//! driver, then report. Commands already carried out (a redelivery after a
//! conductor restart) are recognised from the host's own records and not
//! carried out again, so no guest is ever spawned twice.

use novalog_schemas::events::SpawnInstance;
use novalog_schemas::{
    ComputeCommand, ComputeFact, Envelope, Event, Meta, PowerState, ServerAction, TaskState,
};
use uuid::Uuid;

use crate::driver::VirtDriver;
use crate::tracker::{HostRecord, Ratios};

#[derive(Debug, Clone)]
pub enum Command {
    Spawn(Box<SpawnInstance>),
    Destroy {
        instance_id: Uuid,
    },
    /// A step of a migration or rebuild saga (see [`crate::migrate`]).
    Saga(Box<ComputeCommand>),
    /// A server action on a guest this host holds.
    Action {
        instance_id: Uuid,
        action: ServerAction,
    },
    /// A read of the guest's console log for the intent `request_id`.
    ConsoleOutput {
        instance_id: Uuid,
        length: Option<i64>,
        request_id: Uuid,
    },
}

/// A command and the record that carried it.
#[derive(Debug, Clone)]
pub struct Job {
    pub cause: Meta,
    pub command: Command,
}

fn fact(cause: &Meta, step: &str, instance: Uuid, event: Event) -> Envelope {
    Envelope {
        meta: cause.caused(step, instance.to_string(), 0),
        event,
    }
}

/// Carries out `jobs` on one host, in order; returns the facts to report.
pub async fn run_host(
    driver: &dyn VirtDriver,
    rec: &mut HostRecord,
    jobs: Vec<Job>,
    ratios: Ratios,
) -> Vec<Envelope> {
    let mut out = Vec::new();
    for job in jobs {
        let started = out.len();
        let display = displayed(&job.command);
        match job.command {
            Command::Spawn(cmd) => spawn(driver, rec, &job.cause, &cmd, ratios, &mut out).await,
            Command::Saga(event) => {
                crate::migrate::run(driver, rec, &job.cause, &event, ratios, &mut out).await
            }
            Command::ConsoleOutput {
                instance_id,
                length,
                request_id,
            } => {
                let (output, error) = match driver.get_console_output(&rec.name, instance_id).await
                {
                    Ok(log) => (crate::snapshot::tail(&log, length), None),
                    // Nova's ConsoleNotAvailable.
                    Err(e) => {
                        tracing::info!(host = %rec.name, %instance_id, error = %e, "console output");
                        (
                            String::new(),
                            Some("Guest does not have a console available.".to_owned()),
                        )
                    }
                };
                out.push(fact(
                    &job.cause,
                    "console-output",
                    instance_id,
                    Event::ComputeFact(ComputeFact::ConsoleOutputFetched {
                        instance_id,
                        host: rec.name.clone(),
                        request_id,
                        output,
                        error,
                    }),
                ));
            }
            Command::Action {
                instance_id,
                action,
            } => {
                let offload = matches!(action, ServerAction::ShelveOffload);
                let done = perform(driver, rec, &job.cause, instance_id, action, &mut out).await;
                // The host let go of the shelved guest: its usage goes out
                // as a destroy does, so schedulers see the room it left.
                if offload
                    && matches!(
                        done.event,
                        Event::ComputeFact(ComputeFact::ServerActionPerformed { .. })
                    )
                {
                    out.push(fact(
                        &job.cause,
                        "offloaded",
                        instance_id,
                        Event::ComputeFact(ComputeFact::InstanceDestroyed {
                            instance_id,
                            host: rec.name.clone(),
                            usage: rec.usage,
                        }),
                    ));
                }
                out.push(done);
            }
            Command::Destroy { instance_id } => {
                if let Err(e) = driver.destroy(&rec.name, instance_id).await {
                    tracing::warn!(host = %rec.name, %instance_id, error = %e, "destroy failed");
                    continue;
                }
                rec.release_all(instance_id);
                rec.note_departure(instance_id);
                out.push(fact(
                    &job.cause,
                    "destroyed",
                    instance_id,
                    Event::ComputeFact(ComputeFact::InstanceDestroyed {
                        instance_id,
                        host: rec.name.clone(),
                        usage: rec.usage,
                    }),
                ));
            }
        }
        if let Some((instance_id, hosts)) = display {
            report_displays(
                driver,
                &rec.name,
                &job.cause,
                instance_id,
                hosts,
                started,
                &mut out,
            )
            .await;
        }
    }
    out
}

/// The guest whose VNC display may have started (or moved) with `command`,
/// and the other host it may now run on (a migration's destination).
fn displayed(command: &Command) -> Option<(Uuid, Option<String>)> {
    match command {
        Command::Spawn(cmd) => Some((cmd.instance_id, None)),
        Command::Saga(c) => match &**c {
            ComputeCommand::FinishMigration(m)
            | ComputeCommand::FinishRevertMigration(m)
            | ComputeCommand::LiveMigrateInstance(m)
            | ComputeCommand::RebuildInstance(m)
            | ComputeCommand::RebuildEvacuatedInstance(m) => {
                Some((m.instance_id, Some(m.dest_host.clone())))
            }
            _ => None,
        },
        Command::Action {
            instance_id,
            action:
                ServerAction::Reboot { .. }
                | ServerAction::Start
                | ServerAction::Unpause
                | ServerAction::Resume
                | ServerAction::Unshelve { .. }
                | ServerAction::Rescue { .. }
                | ServerAction::Unrescue,
        } => Some((*instance_id, None)),
        Command::Action { .. } | Command::Destroy { .. } | Command::ConsoleOutput { .. } => None,
    }
}

/// Reports where the guest's VNC display listens, on this host and on
/// `other` (a host the same driver serves: fake hosts share one), ahead of
/// the job's own facts (from `started` in `out`), so that the conductor
/// knows the display by the time it hears the guest runs.
async fn report_displays(
    driver: &dyn VirtDriver,
    host: &str,
    cause: &Meta,
    instance_id: Uuid,
    other: Option<String>,
    started: usize,
    out: &mut Vec<Envelope>,
) {
    let mut hosts = vec![host.to_owned()];
    hosts.extend(other.filter(|h| !h.is_empty() && h != host));
    let mut at = started.min(out.len());
    for h in hosts {
        let Some(endpoint) = driver.console_endpoint(&h, instance_id).await else {
            continue;
        };
        let report = fact(
            cause,
            &format!("display@{h}"),
            instance_id,
            Event::ComputeFact(ComputeFact::ConsoleEndpointReported {
                instance_id,
                host: h.clone(),
                address: endpoint.address,
                port: u32::from(endpoint.port),
            }),
        );
        out.insert(at, report);
        at += 1;
    }
}

/// Carries out one server action with the driver and reports the guest's
/// power state after it, whether it worked or not (the hypervisor is the
/// authority on power state).
async fn perform(
    driver: &dyn VirtDriver,
    rec: &mut HostRecord,
    cause: &Meta,
    id: Uuid,
    action: ServerAction,
    out: &mut Vec<Envelope>,
) -> Envelope {
    let host_name = rec.name.clone();
    let host = host_name.as_str();
    let result = match action {
        ServerAction::Reboot { hard } => driver.reboot(host, id, hard).await,
        ServerAction::Stop => driver.power_off(host, id).await,
        ServerAction::Start => driver.power_on(host, id).await,
        ServerAction::Pause => driver.pause(host, id).await,
        ServerAction::Unpause => driver.unpause(host, id).await,
        ServerAction::Suspend => driver.suspend(host, id).await,
        ServerAction::Resume => driver.resume(host, id).await,
        // Powered off, then snapshotted into the shelved image.
        ServerAction::Shelve { image_id } => match driver.power_off(host, id).await {
            Ok(p) => match image_id {
                Some(_) => snapshot(driver, host, cause, id, &action, out)
                    .await
                    .map(|()| p),
                None => Ok(p),
            },
            Err(e) => Err(e),
        },
        ServerAction::CreateImage { .. } => {
            match snapshot(driver, host, cause, id, &action, out).await {
                Ok(()) => Ok(driver.get_info(host, id).unwrap_or(PowerState::NoState)),
                Err(e) => Err(e),
            }
        }
        ServerAction::TriggerCrashDump => match driver.trigger_crash_dump(host, id).await {
            Ok(()) => Ok(driver.get_info(host, id).unwrap_or(PowerState::NoState)),
            Err(e) => Err(e),
        },
        // Soft-deleted guests are powered off where they are, restored
        // ones powered on again (Nova's `soft_delete`, `restore`).
        ServerAction::SoftDelete => driver.power_off(host, id).await,
        ServerAction::Restore => driver.power_on(host, id).await,
        ServerAction::ShelveOffload => match driver.destroy(host, id).await {
            Ok(()) => {
                rec.release_all(id);
                rec.note_departure(id);
                Ok(PowerState::NoState)
            }
            Err(e) => Err(e),
        },
        // Unshelving a guest still on its host powers it on again.
        ServerAction::Unshelve { .. } => driver.power_on(host, id).await,
        ServerAction::Rescue { image_id } => {
            let image = image_id.unwrap_or_default();
            driver.rescue(host, id, image).await
        }
        ServerAction::Unrescue => driver.unrescue(host, id).await,
        ServerAction::Lock { .. } | ServerAction::Unlock | ServerAction::ResetState { .. } => Err(
            crate::driver::DriverError::Failed(format!("{} is not a host action", action.name())),
        ),
    };
    let power = match &result {
        Ok(p) => *p,
        Err(_) => driver.get_info(host, id).unwrap_or(PowerState::NoState),
    };
    if let Some(i) = rec.instances.get_mut(&id) {
        i.power_state = power;
    }
    let host = rec.name.clone();
    match result {
        Ok(_) => fact(
            cause,
            "performed",
            id,
            Event::ComputeFact(ComputeFact::ServerActionPerformed {
                instance_id: id,
                host,
                action,
                power_state: power,
            }),
        ),
        Err(e) => fact(
            cause,
            "action-failed",
            id,
            Event::ComputeFact(ComputeFact::ServerActionFailed {
                instance_id: id,
                host,
                action,
                reason: e.to_string(),
                power_state: power,
            }),
        ),
    }
}

/// The one snapshot path (createImage, shelve): the driver copies the
/// guest's disk and stores it in the image service; each step is reported
/// as Nova's compute manager moves the task (`image_pending_upload`, then
/// `image_uploading` with the stored bytes' size and digests).
async fn snapshot(
    driver: &dyn VirtDriver,
    host: &str,
    cause: &Meta,
    id: Uuid,
    action: &ServerAction,
    out: &mut Vec<Envelope>,
) -> Result<(), crate::driver::DriverError> {
    let Some(image_id) = (match action {
        ServerAction::CreateImage { image_id, .. } | ServerAction::Shelve { image_id } => *image_id,
        _ => None,
    }) else {
        return Err(crate::driver::DriverError::Failed(
            "no image to snapshot into".into(),
        ));
    };
    let (pending, uploading) = match action {
        ServerAction::Shelve { .. } => (
            TaskState::ShelvingImagePendingUpload,
            TaskState::ShelvingImageUploading,
        ),
        _ => (TaskState::ImagePendingUpload, TaskState::ImageUploading),
    };
    let stored = driver.snapshot(host, id, image_id).await?;
    for (step, task_state, stored) in [
        ("snapshot-pending-upload", pending, None),
        ("snapshot-uploading", uploading, Some(stored)),
    ] {
        let stored = stored.unwrap_or(crate::snapshot::Stored {
            size: 0,
            checksum: String::new(),
            os_hash_value: String::new(),
        });
        out.push(fact(
            cause,
            step,
            id,
            Event::ComputeFact(ComputeFact::SnapshotProgressed {
                instance_id: id,
                host: host.to_owned(),
                action: action.clone(),
                task_state,
                size: stored.size,
                checksum: stored.checksum,
                os_hash_value: stored.os_hash_value,
            }),
        ));
    }
    Ok(())
}

async fn spawn(
    driver: &dyn VirtDriver,
    rec: &mut HostRecord,
    cause: &Meta,
    cmd: &SpawnInstance,
    ratios: Ratios,
    out: &mut Vec<Envelope>,
) {
    let id = cmd.instance_id;
    if rec.instances.contains_key(&id) {
        // Already claimed here: this command was carried out before.
        return;
    }
    let claim = match driver.injected_claim_failure(&rec.name) {
        Some(reason) => Err(reason),
        None => rec.claim(id, cmd.flavor.resources(), cmd.attempt, ratios),
    };
    if let Err(reason) = claim {
        out.push(fact(
            cause,
            "claim-failed",
            id,
            Event::ComputeFact(ComputeFact::ClaimFailed {
                instance_id: id,
                host: rec.name.clone(),
                attempt: cmd.attempt,
                reason,
                usage: rec.usage,
            }),
        ));
        return;
    }
    out.push(fact(
        cause,
        "claimed",
        id,
        Event::ComputeFact(ComputeFact::ClaimSucceeded {
            instance_id: id,
            host: rec.name.clone(),
            attempt: cmd.attempt,
            usage: rec.usage,
        }),
    ));
    match driver.spawn(&rec.name, cmd).await {
        Ok(power) => {
            if let Some(i) = rec.instances.get_mut(&id) {
                i.power_state = power;
            }
            out.push(fact(
                cause,
                "spawned",
                id,
                Event::ComputeFact(ComputeFact::InstanceSpawned {
                    instance_id: id,
                    host: rec.name.clone(),
                    attempt: cmd.attempt,
                    power_state: power,
                }),
            ));
        }
        // A host that hangs says nothing; the conductor's build deadline
        // covers it.
        Err(crate::driver::DriverError::Silent) => {}
        Err(e) => {
            rec.release(id);
            out.push(fact(
                cause,
                "spawn-failed",
                id,
                Event::ComputeFact(ComputeFact::SpawnFailed {
                    instance_id: id,
                    host: rec.name.clone(),
                    attempt: cmd.attempt,
                    reason: e.to_string(),
                    usage: rec.usage,
                }),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use novalog_schemas::{Actor, Flavor, Image, Resources};

    use super::*;
    use crate::fake::{FakeDriver, FakeOptions};

    const RATIOS: Ratios = Ratios {
        cpu: 16.0,
        ram: 1.5,
        disk: 1.0,
    };

    fn host(name: &str) -> HostRecord {
        HostRecord::new(
            name.into(),
            Resources {
                vcpus: 4,
                memory_mb: 4_096,
                disk_gb: 40,
            },
        )
    }

    fn spawn_job(id: Uuid, host: &str, ram_mb: u64) -> Job {
        Job {
            cause: Meta::origin(
                Uuid::new_v4(),
                "req-1".into(),
                Actor::default(),
                id.to_string(),
            ),
            command: Command::Spawn(Box::new(SpawnInstance {
                instance_id: id,
                host: host.into(),
                attempt: 1,
                project_id: "p".into(),
                name: "vm".into(),
                flavor: Flavor {
                    id: "1".into(),
                    name: "f".into(),
                    vcpus: 1,
                    ram_mb,
                    disk_gb: 1,
                    ephemeral_gb: 0,
                    swap_mb: 0,
                    rxtx_factor: 1.0,
                    is_public: true,
                    extra_specs: Default::default(),
                    description: None,
                },
                image: Image {
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
            })),
        }
    }

    fn types(out: &[Envelope]) -> Vec<&'static str> {
        out.iter().map(|e| e.event.type_name()).collect()
    }

    #[tokio::test]
    async fn spawn_claims_then_spawns_and_a_redelivery_does_nothing() {
        let d = FakeDriver::new(FakeOptions::default());
        let mut h = host("h");
        let id = Uuid::new_v4();
        let job = spawn_job(id, "h", 512);
        let out = run_host(&d, &mut h, vec![job.clone()], RATIOS).await;
        assert_eq!(types(&out), ["ClaimSucceeded", "InstanceSpawned"]);
        let again = run_host(&d, &mut h, vec![job], RATIOS).await;
        assert!(again.is_empty());
        assert_eq!(d.spawn_count(id), 1);
        assert_eq!(h.usage.memory_mb_used, 512);
    }

    #[tokio::test]
    async fn claim_that_does_not_fit_fails_without_spawning() {
        let d = FakeDriver::new(FakeOptions::default());
        let mut h = host("h");
        let id = Uuid::new_v4();
        let out = run_host(&d, &mut h, vec![spawn_job(id, "h", 10_000)], RATIOS).await;
        assert_eq!(types(&out), ["ClaimFailed"]);
        assert_eq!(d.spawn_count(id), 0);
        assert_eq!(h.usage.instances, 0);
    }

    #[tokio::test]
    async fn failed_spawn_releases_the_claim() {
        let d = FakeDriver::new(FakeOptions {
            fail_spawns: HashSet::from(["h".to_string()]),
            ..Default::default()
        });
        let mut h = host("h");
        let out = run_host(
            &d,
            &mut h,
            vec![spawn_job(Uuid::new_v4(), "h", 512)],
            RATIOS,
        )
        .await;
        assert_eq!(types(&out), ["ClaimSucceeded", "SpawnFailed"]);
        assert_eq!(h.usage.memory_mb_used, 0);
        match &out[1].event {
            Event::ComputeFact(ComputeFact::SpawnFailed { usage, .. }) => {
                assert_eq!(usage.memory_mb_used, 0)
            }
            e => panic!("{e:?}"),
        }
    }

    fn action_job(id: Uuid, action: ServerAction) -> Job {
        Job {
            cause: Meta::origin(
                Uuid::new_v4(),
                "req-3".into(),
                Actor::default(),
                id.to_string(),
            ),
            command: Command::Action {
                instance_id: id,
                action,
            },
        }
    }

    #[tokio::test]
    async fn actions_drive_the_guest_and_report_its_power_state() {
        let d = FakeDriver::new(FakeOptions {
            fail_actions: HashSet::from(["bad".to_string()]),
            ..Default::default()
        });
        let mut h = host("h");
        let id = Uuid::new_v4();
        run_host(&d, &mut h, vec![spawn_job(id, "h", 512)], RATIOS).await;
        let out = run_host(
            &d,
            &mut h,
            vec![
                action_job(id, ServerAction::Stop),
                action_job(id, ServerAction::Pause),
            ],
            RATIOS,
        )
        .await;
        match (&out[0].event, &out[1].event) {
            (
                Event::ComputeFact(ComputeFact::ServerActionPerformed { power_state, .. }),
                Event::ComputeFact(ComputeFact::ServerActionFailed {
                    power_state: after, ..
                }),
            ) => {
                assert_eq!(*power_state, PowerState::Shutdown);
                assert_eq!(*after, PowerState::Shutdown, "still off");
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(h.instances[&id].power_state, PowerState::Shutdown);
        assert_eq!(d.get_info("h", id), Some(PowerState::Shutdown));

        let mut bad = host("bad");
        run_host(&d, &mut bad, vec![spawn_job(id, "bad", 512)], RATIOS).await;
        let out = run_host(
            &d,
            &mut bad,
            vec![action_job(id, ServerAction::Reboot { hard: false })],
            RATIOS,
        )
        .await;
        match &out[0].event {
            Event::ComputeFact(ComputeFact::ServerActionFailed {
                reason,
                power_state,
                ..
            }) => {
                assert!(reason.contains("injected reboot failure"), "{reason}");
                assert_eq!(*power_state, PowerState::Shutdown);
            }
            e => panic!("{e:?}"),
        }
    }

    #[tokio::test]
    async fn destroy_releases_and_is_idempotent() {
        let d = FakeDriver::new(FakeOptions::default());
        let mut h = host("h");
        let id = Uuid::new_v4();
        run_host(&d, &mut h, vec![spawn_job(id, "h", 512)], RATIOS).await;
        let destroy = Job {
            cause: Meta::origin(
                Uuid::new_v4(),
                "req-2".into(),
                Actor::default(),
                id.to_string(),
            ),
            command: Command::Destroy { instance_id: id },
        };
        let out = run_host(&d, &mut h, vec![destroy.clone(), destroy], RATIOS).await;
        assert_eq!(types(&out), ["InstanceDestroyed", "InstanceDestroyed"]);
        assert_eq!(h.usage.instances, 0);
        assert_eq!(d.guests_on("h"), 0);
    }
}
