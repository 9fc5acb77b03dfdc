//! The host's side of the migration and rebuild sagas: each command is one
//! driver step plus the claim bookkeeping that goes with it, reported as
//! one fact. A step already carried out here (a redelivered command) is
//! not carried out again. A driver that does not answer (injected silence)
//! leaves the report out, as a host that hangs would; the conductor's
//! deadline covers it.

use novalog_schemas::migration::{MigrationCommand, MigrationFact};
use novalog_schemas::{ComputeCommand, ComputeFact, Envelope, Event, Meta, PowerState};

use crate::driver::{DriverError, VirtDriver};
use crate::tracker::{HostRecord, Ratios};

fn fact(cause: &Meta, step: &str, cmd: &MigrationCommand, event: Event) -> Envelope {
    Envelope {
        meta: cause.caused(step, cmd.instance_id.to_string(), 0),
        event,
    }
}

fn report(
    rec: &HostRecord,
    cmd: &MigrationCommand,
    power: PowerState,
    step: &str,
    reason: String,
) -> Box<MigrationFact> {
    Box::new(MigrationFact {
        instance_id: cmd.instance_id,
        migration_id: cmd.migration_id,
        host: rec.name.clone(),
        attempt: cmd.attempt,
        power_state: power,
        step: step.to_owned(),
        reason,
        usage: rec.usage,
    })
}

fn set_power(rec: &mut HostRecord, cmd: &MigrationCommand, power: PowerState) {
    if let Some(i) = rec.instances.get_mut(&cmd.instance_id) {
        i.power_state = power;
    }
}

/// Carries out one saga command on `rec`'s host; appends its fact to `out`.
pub async fn run(
    driver: &dyn VirtDriver,
    rec: &mut HostRecord,
    cause: &Meta,
    command: &ComputeCommand,
    ratios: Ratios,
    out: &mut Vec<Envelope>,
) {
    let (step, cmd) = match command {
        ComputeCommand::PrepResize(c) => ("prep_resize", c),
        ComputeCommand::MigrateDiskAndPowerOff(c) => ("migrate_disk_and_power_off", c),
        ComputeCommand::FinishMigration(c) => ("finish_migration", c),
        ComputeCommand::ConfirmMigration(c) => ("confirm_migration", c),
        ComputeCommand::RevertMigration(c) => ("revert_migration", c),
        ComputeCommand::FinishRevertMigration(c) => ("finish_revert_migration", c),
        ComputeCommand::DropMigrationClaim(c) => ("drop_migration_claim", c),
        ComputeCommand::RebuildInstance(c) => ("rebuild", c),
        ComputeCommand::LiveMigrateInstance(c) => ("live_migration", c),
        ComputeCommand::RebuildEvacuatedInstance(c) => ("rebuild_evacuated", c),
        ComputeCommand::CleanupEvacuatedInstance(c) => ("cleanup_evacuated", c),
        // Not saga steps: the agent carries them out itself.
        ComputeCommand::SpawnInstance(_)
        | ComputeCommand::DestroyInstance { .. }
        | ComputeCommand::PerformServerAction { .. }
        | ComputeCommand::GetConsoleOutput { .. } => return,
    };
    // A compensation reuses a step's command under its own step id, so the
    // marker is per command record, not per step name.
    let marker = format!("{step}/{}", cause.event_id);
    if rec.step_done(cmd.migration_id, &marker) {
        return;
    }
    let result = carry_out(driver, rec, cause, step, cmd, ratios).await;
    match result {
        Ok(facts) => out.extend(facts),
        Err(DriverError::Silent) => return, // no answer, not done
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(host = %rec.name, instance = %cmd.instance_id, step, %reason, "saga step failed");
            let power = driver
                .get_info(&rec.name, cmd.instance_id)
                .unwrap_or(PowerState::NoState);
            let f = report(rec, cmd, power, step, reason);
            out.push(fact(
                cause,
                "step-failed",
                cmd,
                Event::ComputeFact(ComputeFact::MigrationStepFailed(f)),
            ));
        }
    }
    rec.record_step(cmd.migration_id, cmd.instance_id, marker);
}

async fn carry_out(
    driver: &dyn VirtDriver,
    rec: &mut HostRecord,
    cause: &Meta,
    step: &str,
    cmd: &MigrationCommand,
    ratios: Ratios,
) -> Result<Vec<Envelope>, DriverError> {
    let id = cmd.instance_id;
    let mid = cmd.migration_id;
    Ok(vec![match step {
        "prep_resize" => {
            let injected = match driver.injected_step_failure(step, &rec.name) {
                Err(DriverError::Silent) => return Err(DriverError::Silent),
                Err(e) => Some(e.to_string()),
                Ok(()) => driver.injected_claim_failure(&rec.name),
            };
            let claim = match injected {
                Some(reason) => Err(reason),
                None => rec.claim_migration(mid, id, cmd.flavor.resources(), ratios),
            };
            match claim {
                Ok(()) => {
                    let f = report(rec, cmd, PowerState::NoState, step, String::new());
                    fact(
                        cause,
                        "resize-claimed",
                        cmd,
                        Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(f)),
                    )
                }
                Err(reason) => {
                    let f = report(rec, cmd, PowerState::NoState, step, reason);
                    fact(
                        cause,
                        "resize-claim-failed",
                        cmd,
                        Event::ComputeFact(ComputeFact::ResizeClaimFailed(f)),
                    )
                }
            }
        }
        "migrate_disk_and_power_off" => {
            driver.migrate_disk_and_power_off(cmd).await?;
            set_power(rec, cmd, PowerState::Shutdown);
            let f = report(rec, cmd, PowerState::Shutdown, step, String::new());
            fact(
                cause,
                "disk-migrated",
                cmd,
                Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(f)),
            )
        }
        "finish_migration" => match driver.finish_migration(cmd).await {
            Ok(power) => {
                rec.land_migration(mid, id, power);
                let f = report(rec, cmd, power, step, String::new());
                fact(
                    cause,
                    "migration-finished",
                    cmd,
                    Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(f)),
                )
            }
            Err(DriverError::Silent) => return Err(DriverError::Silent),
            Err(e) => {
                // Nothing of the guest stays here, nor its claim.
                rec.drop_incoming(mid);
                if cmd.source_host != cmd.dest_host {
                    let _ = driver.destroy(&rec.name, id).await;
                }
                return Err(e);
            }
        },
        "confirm_migration" => {
            let result = driver.confirm_migration(cmd).await;
            if result != Err(DriverError::Silent) {
                // The guest lives on the destination either way: the
                // source's claim goes even if its cleanup failed.
                rec.release_source(mid, id);
            }
            result?;
            let f = report(rec, cmd, PowerState::NoState, step, String::new());
            fact(
                cause,
                "migration-confirmed",
                cmd,
                Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(f)),
            )
        }
        "revert_migration" => {
            driver.revert_migration(cmd).await?;
            rec.revert_dest(mid, id);
            let f = report(rec, cmd, PowerState::NoState, step, String::new());
            fact(
                cause,
                "migration-reverted",
                cmd,
                Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(f)),
            )
        }
        "finish_revert_migration" => {
            let power = driver.finish_revert_migration(cmd).await?;
            set_power(rec, cmd, power);
            let f = report(rec, cmd, power, step, String::new());
            fact(
                cause,
                "revert-finished",
                cmd,
                Event::ComputeFact(ComputeFact::RevertFinishedOnSource(f)),
            )
        }
        "drop_migration_claim" => {
            rec.drop_incoming(mid);
            return Ok(Vec::new());
        }
        "rebuild" => {
            let spawning = report(rec, cmd, PowerState::NoState, step, String::new());
            let spawning = fact(
                cause,
                "rebuild-spawning",
                cmd,
                Event::ComputeFact(ComputeFact::RebuildSpawnStarted(spawning)),
            );
            let power = driver.rebuild(cmd).await?;
            set_power(rec, cmd, power);
            let f = report(rec, cmd, power, step, String::new());
            return Ok(vec![
                spawning,
                fact(
                    cause,
                    "rebuilt",
                    cmd,
                    Event::ComputeFact(ComputeFact::InstanceRebuilt(f)),
                ),
            ]);
        }
        "live_migration" => {
            driver.live_migration(cmd).await?;
            // The guest left: so does its claim here.
            rec.release(id);
            let f = report(rec, cmd, PowerState::NoState, step, String::new());
            fact(
                cause,
                "live-migrated",
                cmd,
                Event::ComputeFact(ComputeFact::InstanceLiveMigrated(f)),
            )
        }
        "rebuild_evacuated" => {
            // Claimed and rebuilt from the image here in one step.
            if !rec.instances.contains_key(&id) {
                let injected = match driver.injected_step_failure(step, &rec.name) {
                    Err(DriverError::Silent) => return Err(DriverError::Silent),
                    Err(e) => Some(e.to_string()),
                    Ok(()) => driver.injected_claim_failure(&rec.name),
                };
                let claim = match injected {
                    Some(reason) => Err(reason),
                    None => rec.claim(id, cmd.flavor.resources(), cmd.attempt, ratios),
                };
                if let Err(reason) = claim {
                    let f = report(rec, cmd, PowerState::NoState, step, reason);
                    return Ok(vec![fact(
                        cause,
                        "evacuate-claim-failed",
                        cmd,
                        Event::ComputeFact(ComputeFact::ResizeClaimFailed(f)),
                    )]);
                }
            }
            let spawning = report(rec, cmd, PowerState::NoState, step, String::new());
            let spawning = fact(
                cause,
                "evacuate-spawning",
                cmd,
                Event::ComputeFact(ComputeFact::RebuildSpawnStarted(spawning)),
            );
            match driver.finish_migration(cmd).await {
                Ok(power) => {
                    set_power(rec, cmd, power);
                    let f = report(rec, cmd, power, "rebuild", String::new());
                    return Ok(vec![
                        spawning,
                        fact(
                            cause,
                            "evacuate-rebuilt",
                            cmd,
                            Event::ComputeFact(ComputeFact::InstanceRebuilt(f)),
                        ),
                    ]);
                }
                Err(DriverError::Silent) => return Err(DriverError::Silent),
                Err(e) => {
                    rec.release(id);
                    let _ = driver.destroy(&rec.name, id).await;
                    let f = report(rec, cmd, PowerState::NoState, "rebuild", e.to_string());
                    return Ok(vec![fact(
                        cause,
                        "step-failed",
                        cmd,
                        Event::ComputeFact(ComputeFact::MigrationStepFailed(f)),
                    )]);
                }
            }
        }
        "cleanup_evacuated" => {
            driver.destroy(&rec.name, id).await?;
            rec.release_all(id);
            let f = report(rec, cmd, PowerState::NoState, step, String::new());
            fact(
                cause,
                "evacuated-cleaned-up",
                cmd,
                Event::ComputeFact(ComputeFact::EvacuatedInstanceCleanedUp(f)),
            )
        }
        _ => return Ok(Vec::new()),
    }])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use novalog_schemas::{Actor, Flavor, HostUsage, Image, Resources};
    use uuid::Uuid;

    use super::*;
    use crate::agent::{Command, Job, run_host};
    use crate::fake::{FakeDriver, FakeOptions};

    const RATIOS: Ratios = Ratios {
        cpu: 16.0,
        ram: 1.0,
        disk: 1.0,
    };

    fn flavor(id: &str, ram_mb: u64) -> Flavor {
        Flavor {
            id: id.into(),
            name: format!("f{id}"),
            vcpus: 1,
            ram_mb,
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
            id: Uuid::nil(),
            name: "cirros".into(),
            status: "active".into(),
            size: 0,
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

    fn host(name: &str) -> HostRecord {
        HostRecord::new(
            name.into(),
            Resources {
                vcpus: 4,
                memory_mb: 4096,
                disk_gb: 40,
            },
        )
    }

    struct Rig {
        d: FakeDriver,
        h1: HostRecord,
        h2: HostRecord,
        id: Uuid,
        mid: Uuid,
    }

    fn cause() -> Meta {
        Meta::origin(
            Uuid::new_v4(),
            "req".into(),
            Actor::default(),
            String::new(),
        )
    }

    impl Rig {
        /// An instance of 512 MB running on h1.
        async fn new(opts: FakeOptions) -> Rig {
            let d = FakeDriver::new(opts);
            let mut h1 = host("h1");
            let id = Uuid::new_v4();
            let spawn = Job {
                cause: cause(),
                command: Command::Spawn(Box::new(novalog_schemas::events::SpawnInstance {
                    instance_id: id,
                    host: "h1".into(),
                    attempt: 1,
                    project_id: "p".into(),
                    name: "vm".into(),
                    flavor: flavor("1", 512),
                    image: image(),
                })),
            };
            run_host(&d, &mut h1, vec![spawn], RATIOS).await;
            Rig {
                d,
                h1,
                h2: host("h2"),
                id,
                mid: Uuid::new_v4(),
            }
        }

        fn cmd(&self, on: &str, dest: &str, ram: u64, power_on: bool) -> Box<MigrationCommand> {
            Box::new(MigrationCommand {
                instance_id: self.id,
                migration_id: self.mid,
                host: on.into(),
                source_host: "h1".into(),
                dest_host: dest.into(),
                attempt: 1,
                flavor: flavor("x", ram),
                image: image(),
                name: "vm".into(),
                project_id: "p".into(),
                power_on,
            })
        }

        /// Runs `event` on the host it names; returns the fact types.
        async fn run(&mut self, event: Event) -> Vec<&'static str> {
            self.run_as(cause(), event).await
        }

        async fn run_as(&mut self, cause: Meta, event: Event) -> Vec<&'static str> {
            let on = match &event {
                Event::Compute(ComputeCommand::PrepResize(c))
                | Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(c))
                | Event::Compute(ComputeCommand::FinishMigration(c))
                | Event::Compute(ComputeCommand::ConfirmMigration(c))
                | Event::Compute(ComputeCommand::RevertMigration(c))
                | Event::Compute(ComputeCommand::FinishRevertMigration(c))
                | Event::Compute(ComputeCommand::DropMigrationClaim(c))
                | Event::Compute(ComputeCommand::RebuildInstance(c))
                | Event::Compute(ComputeCommand::LiveMigrateInstance(c))
                | Event::Compute(ComputeCommand::RebuildEvacuatedInstance(c))
                | Event::Compute(ComputeCommand::CleanupEvacuatedInstance(c)) => c.host.clone(),
                _ => unreachable!(),
            };
            let Event::Compute(command) = event else {
                unreachable!()
            };
            let rec = if on == "h1" {
                &mut self.h1
            } else {
                &mut self.h2
            };
            let job = Job {
                cause,
                command: Command::Saga(Box::new(command)),
            };
            let out = run_host(&self.d, rec, vec![job], RATIOS).await;
            out.iter().map(|e| e.event.type_name()).collect()
        }
    }

    fn mem(h: &HostRecord) -> u64 {
        h.usage.memory_mb_used
    }

    fn consistent(h: &HostRecord) {
        let c = h.claimed();
        assert_eq!(
            HostUsage {
                generation: 0,
                ..h.usage
            },
            HostUsage { generation: 0, ..c },
            "usage equals the sum of the claims on {}",
            h.name
        );
    }

    #[tokio::test]
    async fn cross_host_resize_holds_both_claims_until_confirm() {
        let mut r = Rig::new(FakeOptions::default()).await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::PrepResize(
                r.cmd("h2", "h2", 1024, false)
            )))
            .await,
            ["ResizeClaimSucceeded"]
        );
        assert_eq!((mem(&r.h1), mem(&r.h2)), (512, 1024));
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(
                r.cmd("h1", "h2", 1024, false)
            )))
            .await,
            ["DiskMigratedAndPoweredOff"]
        );
        assert_eq!(r.d.get_info("h1", r.id), Some(PowerState::Shutdown));
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::FinishMigration(
                r.cmd("h2", "h2", 1024, true)
            )))
            .await,
            ["MigrationFinishedOnDest"]
        );
        assert_eq!(r.d.running_on(r.id), ["h2"]);
        assert_eq!(
            (mem(&r.h1), mem(&r.h2)),
            (512, 1024),
            "source held until confirm"
        );
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::ConfirmMigration(
                r.cmd("h1", "h2", 512, false)
            )))
            .await,
            ["MigrationConfirmedOnSource"]
        );
        assert_eq!((mem(&r.h1), mem(&r.h2)), (0, 1024));
        assert_eq!(r.d.get_info("h1", r.id), None);
        assert!(r.h2.instances.contains_key(&r.id));
        consistent(&r.h1);
        consistent(&r.h2);
    }

    #[tokio::test]
    async fn revert_releases_the_destination_and_restarts_the_source() {
        let mut r = Rig::new(FakeOptions::default()).await;
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd("h2", "h2", 1024, false),
        )))
        .await;
        r.run(Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(
            r.cmd("h1", "h2", 1024, false),
        )))
        .await;
        r.run(Event::Compute(ComputeCommand::FinishMigration(
            r.cmd("h2", "h2", 1024, true),
        )))
        .await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::RevertMigration(
                r.cmd("h2", "h2", 1024, false)
            )))
            .await,
            ["MigrationRevertedOnDest"]
        );
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::FinishRevertMigration(
                r.cmd("h1", "h2", 512, true)
            )))
            .await,
            ["RevertFinishedOnSource"]
        );
        assert_eq!((mem(&r.h1), mem(&r.h2)), (512, 0));
        assert_eq!(r.d.running_on(r.id), ["h1"]);
        consistent(&r.h1);
        consistent(&r.h2);
    }

    #[tokio::test]
    async fn same_host_resize_swaps_claims_and_confirm_or_revert_leaves_one() {
        for confirm in [true, false] {
            let mut r = Rig::new(FakeOptions::default()).await;
            r.run(Event::Compute(ComputeCommand::PrepResize(
                r.cmd("h1", "h1", 1024, false),
            )))
            .await;
            assert_eq!(mem(&r.h1), 1536);
            r.run(Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(
                r.cmd("h1", "h1", 1024, false),
            )))
            .await;
            r.run(Event::Compute(ComputeCommand::FinishMigration(
                r.cmd("h1", "h1", 1024, true),
            )))
            .await;
            assert_eq!(mem(&r.h1), 1536, "the old flavor is held until confirm");
            if confirm {
                r.run(Event::Compute(ComputeCommand::ConfirmMigration(
                    r.cmd("h1", "h1", 512, false),
                )))
                .await;
                assert_eq!(mem(&r.h1), 1024);
                assert_eq!(r.d.running_on(r.id), ["h1"]);
            } else {
                let revert = cause();
                r.run_as(
                    revert.clone(),
                    Event::Compute(ComputeCommand::RevertMigration(
                        r.cmd("h1", "h1", 1024, false),
                    )),
                )
                .await;
                // Redelivered: carried out once.
                assert!(
                    r.run_as(
                        revert,
                        Event::Compute(ComputeCommand::RevertMigration(
                            r.cmd("h1", "h1", 1024, false)
                        ))
                    )
                    .await
                    .is_empty()
                );
                r.run(Event::Compute(ComputeCommand::FinishRevertMigration(
                    r.cmd("h1", "h1", 512, true),
                )))
                .await;
                assert_eq!(mem(&r.h1), 512);
                assert_eq!(r.h1.instances[&r.id].resources.memory_mb, 512);
            }
            assert_eq!(r.h1.usage.instances, 1);
            consistent(&r.h1);
        }
    }

    #[tokio::test]
    async fn a_claim_that_does_not_fit_fails_and_holds_nothing() {
        let mut r = Rig::new(FakeOptions::default()).await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::PrepResize(
                r.cmd("h2", "h2", 100_000, false)
            )))
            .await,
            ["ResizeClaimFailed"]
        );
        assert_eq!(mem(&r.h2), 0);
    }

    #[tokio::test]
    async fn a_failed_finish_leaves_nothing_on_the_destination() {
        let mut r = Rig::new(FakeOptions::default()).await;
        r.d.fail_step("finish_migration", "h2");
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd("h2", "h2", 1024, false),
        )))
        .await;
        r.run(Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(
            r.cmd("h1", "h2", 1024, false),
        )))
        .await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::FinishMigration(
                r.cmd("h2", "h2", 1024, true)
            )))
            .await,
            ["MigrationStepFailed"]
        );
        assert_eq!(mem(&r.h2), 0);
        assert_eq!(r.d.get_info("h2", r.id), None);
        // Compensation on the source.
        r.run(Event::Compute(ComputeCommand::FinishRevertMigration(
            r.cmd("h1", "h2", 512, true),
        )))
        .await;
        assert_eq!(r.d.running_on(r.id), ["h1"]);
        consistent(&r.h2);
    }

    #[tokio::test]
    async fn injected_failures_and_silence_per_step() {
        let mut r = Rig::new(FakeOptions::default()).await;
        r.d.fail_step("prep_resize", "h2");
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::PrepResize(
                r.cmd("h2", "h2", 1024, false)
            )))
            .await,
            ["ResizeClaimFailed"]
        );
        r.d.heal();
        r.d.silence_step("migrate_disk_and_power_off", "*");
        assert!(
            r.run(Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(
                r.cmd("h1", "h2", 1024, false)
            )))
            .await
            .is_empty()
        );
        assert_eq!(
            r.d.get_info("h1", r.id),
            Some(PowerState::Running),
            "a silent step changes nothing"
        );
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd("h2", "h2", 1024, false),
        )))
        .await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::DropMigrationClaim(
                r.cmd("h2", "h2", 1024, false)
            )))
            .await,
            Vec::<&str>::new()
        );
        assert_eq!(mem(&r.h2), 0, "a dropped claim is released");
    }

    #[tokio::test]
    async fn rebuild_reports_spawning_then_rebuilt_and_keeps_the_claim() {
        let mut r = Rig::new(FakeOptions::default()).await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::RebuildInstance(
                r.cmd("h1", "h1", 512, false)
            )))
            .await,
            ["RebuildSpawnStarted", "InstanceRebuilt"]
        );
        assert_eq!(r.d.rebuild_count(r.id), 1);
        assert_eq!(r.d.get_info("h1", r.id), Some(PowerState::Shutdown));
        assert_eq!(mem(&r.h1), 512);
        r.d.fail_step("rebuild", "h1");
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::RebuildInstance(
                r.cmd("h1", "h1", 512, true)
            )))
            .await,
            ["MigrationStepFailed"]
        );
    }

    #[tokio::test]
    async fn destroy_releases_migration_claims_too() {
        let mut r = Rig::new(FakeOptions::default()).await;
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd("h1", "h1", 1024, false),
        )))
        .await;
        let job = Job {
            cause: cause(),
            command: Command::Destroy { instance_id: r.id },
        };
        run_host(&r.d, &mut r.h1, vec![job], RATIOS).await;
        assert_eq!(mem(&r.h1), 0);
        assert_eq!(r.h1.usage.instances, 0);
    }

    #[tokio::test]
    async fn live_migration_moves_the_guest_and_its_claim() {
        let mut r = Rig::new(FakeOptions::default()).await;
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd("h2", "h2", 512, false),
        )))
        .await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::LiveMigrateInstance(
                r.cmd("h1", "h2", 512, true)
            )))
            .await,
            ["InstanceLiveMigrated"]
        );
        assert_eq!(r.d.running_on(r.id), ["h2"]);
        assert_eq!(mem(&r.h1), 0);
        r.run(Event::Compute(ComputeCommand::FinishMigration(
            r.cmd("h2", "h2", 512, true),
        )))
        .await;
        assert_eq!(mem(&r.h2), 512);
        assert!(r.h2.instances.contains_key(&r.id));
        assert!(r.h2.migration_claims.is_empty());
        consistent(&r.h2);
    }

    /// A resize of the rig's instance from `from` to `to` (the same host
    /// or not), confirmed, under a new migration id.
    async fn resize_and_confirm(r: &mut Rig, from: &str, to: &str) {
        r.mid = Uuid::new_v4();
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd(to, to, 1024, false),
        )))
        .await;
        let mut c = r.cmd(from, to, 1024, false);
        c.source_host = from.into();
        r.run(Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(c)))
            .await;
        let mut c = r.cmd(to, to, 1024, true);
        c.source_host = from.into();
        r.run(Event::Compute(ComputeCommand::FinishMigration(c)))
            .await;
        let mut c = r.cmd(from, to, 512, false);
        c.source_host = from.into();
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::ConfirmMigration(c)))
                .await,
            ["MigrationConfirmedOnSource"]
        );
    }

    #[tokio::test]
    async fn saga_markers_are_bounded_by_the_live_instances() {
        use crate::tracker::DEPARTED_SAGAS_KEPT;
        let mut r = Rig::new(FakeOptions::default()).await;
        // One live instance resized again and again on its host: only its
        // current saga's markers stay.
        for _ in 0..50 {
            resize_and_confirm(&mut r, "h1", "h1").await;
        }
        assert_eq!(r.h1.sagas.len(), 1);
        assert!(r.h1.departed.is_empty());
        let live = r.id;

        // Instances created on h1, resized to h2, deleted there: each saga
        // departs h1 at the confirm and h2 at the delete, and only the last
        // few departures keep their markers.
        for _ in 0..100 {
            r.id = Uuid::new_v4();
            let spawn = Job {
                cause: cause(),
                command: Command::Spawn(Box::new(novalog_schemas::events::SpawnInstance {
                    instance_id: r.id,
                    host: "h1".into(),
                    attempt: 1,
                    project_id: "p".into(),
                    name: "vm".into(),
                    flavor: flavor("1", 512),
                    image: image(),
                })),
            };
            run_host(&r.d, &mut r.h1, vec![spawn], RATIOS).await;
            resize_and_confirm(&mut r, "h1", "h2").await;
            let destroy = Job {
                cause: cause(),
                command: Command::Destroy { instance_id: r.id },
            };
            run_host(&r.d, &mut r.h2, vec![destroy], RATIOS).await;
        }
        assert_eq!(r.h1.departed.len(), DEPARTED_SAGAS_KEPT);
        assert_eq!(
            r.h1.sagas.len(),
            DEPARTED_SAGAS_KEPT + 1,
            "and the live one's"
        );
        assert!(r.h1.sagas.values().any(|s| s.instance_id == live));
        assert_eq!(r.h2.departed.len(), DEPARTED_SAGAS_KEPT);
        assert_eq!(r.h2.sagas.len(), DEPARTED_SAGAS_KEPT);
        assert_eq!(r.h2.usage.instances, 0);
        assert_eq!(r.d.guests_on("h2"), 0);
        consistent(&r.h1);
        consistent(&r.h2);
    }

    #[tokio::test]
    async fn a_command_sent_again_after_its_instance_left_is_not_carried_out_twice() {
        let mut r = Rig::new(FakeOptions::default()).await;
        r.run(Event::Compute(ComputeCommand::PrepResize(
            r.cmd("h2", "h2", 512, false),
        )))
        .await;
        let moved = cause();
        let live = Event::Compute(ComputeCommand::LiveMigrateInstance(
            r.cmd("h1", "h2", 512, true),
        ));
        assert_eq!(
            r.run_as(moved.clone(), live.clone()).await,
            ["InstanceLiveMigrated"]
        );
        assert!(!r.h1.holds(r.id));
        assert_eq!(r.h1.departed.len(), 1);
        assert!(
            r.run_as(moved, live).await.is_empty(),
            "the copy is recognised, not failed as a guest not found"
        );
    }

    #[test]
    fn a_host_record_stored_before_the_bound_is_read_with_its_markers_departed() {
        use crate::tracker::{DEPARTED_SAGAS_KEPT, LegacyHostRecord};
        let h = host("h1");
        let old = LegacyHostRecord {
            name: h.name.clone(),
            capacity: h.capacity,
            usage: h.usage,
            instances: h.instances.clone(),
            migration_claims: h.migration_claims.clone(),
            done_steps: (0..100u128)
                .map(|m| (Uuid::from_u128(m), format!("prep_resize/{m}")))
                .collect(),
        };
        let bytes = novalog_store::encode("hosts", &old).unwrap();
        assert!(
            novalog_store::decode::<HostRecord>("hosts", &bytes).is_err(),
            "the new shape does not misread the old"
        );
        let rec =
            HostRecord::from(novalog_store::decode::<LegacyHostRecord>("hosts", &bytes).unwrap());
        assert_eq!(rec.sagas.len(), DEPARTED_SAGAS_KEPT);
        assert!(rec.step_done(Uuid::from_u128(99), "prep_resize/99"));
        assert!(!rec.step_done(Uuid::from_u128(0), "prep_resize/0"));
    }

    #[tokio::test]
    async fn evacuation_claims_and_rebuilds_on_the_destination_and_the_source_cleans_up() {
        let mut r = Rig::new(FakeOptions::default()).await;
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::RebuildEvacuatedInstance(
                r.cmd("h2", "h2", 512, true)
            )))
            .await,
            ["RebuildSpawnStarted", "InstanceRebuilt"]
        );
        assert_eq!(mem(&r.h2), 512);
        assert_eq!(
            r.run(Event::Compute(ComputeCommand::CleanupEvacuatedInstance(
                r.cmd("h1", "h2", 512, false)
            )))
            .await,
            ["EvacuatedInstanceCleanedUp"]
        );
        assert_eq!(mem(&r.h1), 0);
        assert_eq!(r.d.running_on(r.id), ["h2"]);
    }
}
