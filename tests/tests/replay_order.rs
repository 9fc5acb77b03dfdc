//! `verify` of the conductor where the order its inputs were handled in
//! live is not written on the log: a record that caused nothing. Named
//! after what broke: on the bench log (reboot, then delete at once),
//! the reboot's answer came in one batch with the delete that pre-empted
//! it; live the delete went first and the answer changed nothing, but
//! the replay put the answer before the delete, finished the reboot, and
//! its instance row came out one version ahead of the live one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_log::{EventLog, Record};
use novalog_replay::rebuild::Service;
use novalog_replay::{Silent, Source};
use novalog_runtime::{Config, Shutdown, ShutdownTrigger};
use novalog_schemas::{
    Actor, ComputeCommand, ComputeFact, Envelope, Event, InstanceEvent, Intent, Meta, PowerState,
    ServerAction,
};
use novalog_tests::{Client, demo_image_id, read_topic, test_config};
use tokio::task::JoinHandle;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// The conductor alone, as its binary runs it.
fn start_conductor(
    cfg: &Config,
    log: &Arc<dyn EventLog>,
) -> (ShutdownTrigger, JoinHandle<novalog_runtime::Result<()>>) {
    let (trigger, shutdown) = Shutdown::new();
    let (cfg, log) = (cfg.clone(), log.clone());
    let task =
        tokio::spawn(async move { novalog_conductor::service::run(&cfg, log, shutdown).await });
    (trigger, task)
}

/// The first record on `topic` that `found` picks, once it is there.
async fn wait_for<T>(
    log: &Arc<dyn EventLog>,
    topic: &str,
    found: impl Fn(&Envelope) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(t) = read_topic(log, topic)
            .await
            .unwrap()
            .iter()
            .find_map(&found)
        {
            return t;
        }
        assert!(Instant::now() < deadline, "nothing awaited on {topic}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn append(log: &Arc<dyn EventLog>, topic: &str, key: &str, env: &Envelope) {
    log.append(vec![Record::new(
        topic,
        key.as_bytes().to_vec(),
        novalog_schemas::encode(env),
    )])
    .await
    .unwrap();
}

fn intent(id: Uuid, intent: Intent) -> Envelope {
    Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            format!("req-{}", Uuid::new_v4()),
            Actor {
                user_id: "admin".into(),
                project_id: "admin".into(),
                roles: vec!["admin".into()],
            },
            id.to_string(),
        ),
        event: Event::Intent(intent),
    }
}

/// The compute agent's answer to `command`.
fn answer(command: &Envelope, fact: ComputeFact) -> Envelope {
    let mut meta = command
        .meta
        .caused("fact", command.meta.aggregate_id.clone(), 0);
    meta.actor = Actor::service("compute");
    Envelope {
        meta,
        event: Event::ComputeFact(fact),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_answer_in_the_batch_of_the_delete_that_preempted_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.report_interval = 5;
    let topics = cfg.topics();

    // A server booted by the whole cloud, which is then stopped: the
    // conductor goes on alone, and the test answers for the host.
    let system = System::start(&cfg, None).await.unwrap();
    let c = Client::admin(system.api_addr);
    let id = c.create_server("a", "1", demo_image_id()).await.unwrap();
    c.wait_built(&[id], WAIT).await.unwrap();
    c.wait_status(id, "ACTIVE", WAIT).await;
    system.stop().await.unwrap();
    let log = novalog_runtime::backend::open_log(&cfg).await.unwrap();

    let (stop, conductor) = start_conductor(&cfg, &log);
    let reboot = intent(
        id,
        Intent::ServerActionRequested {
            instance_id: id,
            action: ServerAction::Reboot { hard: false },
        },
    );
    append(&log, &topics.intents, "admin", &reboot).await;
    let command = wait_for(&log, &topics.compute, |e| {
        matches!(
            e.event,
            Event::Compute(ComputeCommand::PerformServerAction { .. })
        )
        .then(|| e.clone())
    })
    .await;
    let host = match &command.event {
        Event::Compute(ComputeCommand::PerformServerAction { host, .. }) => host.clone(),
        _ => unreachable!(),
    };
    stop.trigger();
    conductor.await.unwrap().unwrap();

    // The user deletes before the reboot is answered, and the answer is
    // appended before the conductor reads the delete: both come to it in
    // one batch, which it handles intents first.
    let delete = intent(
        id,
        Intent::ServerDeleteRequested {
            instance_id: id,
            force: false,
        },
    );
    append(&log, &topics.intents, "admin", &delete).await;
    let rebooted = answer(
        &command,
        ComputeFact::ServerActionPerformed {
            instance_id: id,
            host: host.clone(),
            action: ServerAction::Reboot { hard: false },
            power_state: PowerState::Running,
        },
    );
    append(&log, &topics.compute_events, &host, &rebooted).await;
    let (stop, conductor) = start_conductor(&cfg, &log);
    let destroy = wait_for(&log, &topics.compute, |e| {
        matches!(
            e.event,
            Event::Compute(ComputeCommand::DestroyInstance { .. })
        )
        .then(|| e.clone())
    })
    .await;
    append(
        &log,
        &topics.compute_events,
        &host,
        &answer(
            &destroy,
            ComputeFact::InstanceDestroyed {
                instance_id: id,
                host: host.clone(),
                usage: Default::default(),
            },
        ),
    )
    .await;
    wait_for(&log, &topics.instances, |e| {
        matches!(
            e.event,
            Event::Instance(InstanceEvent::InstanceDeleted { .. })
        )
        .then_some(())
    })
    .await;
    stop.trigger();
    conductor.await.unwrap().unwrap();
    // What makes this the case that broke: live, the reboot's answer
    // came after the delete and caused nothing.
    let caused_by_answer = read_topic(&log, &topics.instances)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.meta.causation_id == Some(rebooted.meta.event_id))
        .count();
    assert_eq!(caused_by_answer, 0, "the delete pre-empted the reboot live");
    drop(log);

    let src = Source::embedded(&cfg.data_dir.join("log"), topics.clone()).unwrap();
    let verified = novalog_replay::rebuild::verify(
        &src,
        &cfg,
        &cfg.data_dir,
        &[Service::Conductor],
        None,
        &Silent,
    )
    .await
    .unwrap();
    let differences: Vec<String> = verified[0]
        .differences
        .iter()
        .map(|d| {
            format!(
                "{}\n  live: {}\n  rebuilt: {}",
                novalog_replay::rebuild::show_key(d),
                novalog_replay::rebuild::show_value(&d.table, d.a.as_deref()),
                novalog_replay::rebuild::show_value(&d.table, d.b.as_deref())
            )
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
