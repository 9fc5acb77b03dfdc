//! The binary's contract: bad input is one line on stderr and exit 2,
//! a violation exit 1, never a panic.

use std::path::Path;
use std::process::{Command, Output};

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::{EventLog, Record};
use novalog_schemas::{Actor, Envelope, Event, InstanceEvent, Intent, Meta, ServerAction};
use uuid::Uuid;

fn replay(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_novalog-replay"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--quiet")
        .args(args)
        .env_remove("NOVALOG_CONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A data directory whose log holds one valid intent and one that does
/// not decode.
async fn small_log(dir: &Path) -> Uuid {
    let log = EmbeddedLog::open(dir.join("log"), one_partition()).unwrap();
    let id = Uuid::new_v4();
    let env = Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor::service("test"),
            id.to_string(),
        ),
        event: Event::Intent(Intent::ServerActionRequested {
            instance_id: id,
            action: ServerAction::Stop,
        }),
    };
    log.append(vec![
        Record::new("novalog.intents", "p", novalog_schemas::encode(&env)),
        Record::new("novalog.intents", "p", b"not a record".to_vec()),
    ])
    .await
    .unwrap();
    id
}

#[test]
fn help_lists_every_subcommand_with_examples() {
    let o = Command::new(env!("CARGO_BIN_EXE_novalog-replay"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "history",
        "state-at",
        "rebuild",
        "diff",
        "verify",
        "check",
        "export",
        "tail",
        "dead-letters",
        "Examples",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}: {help}");
    }
}

#[test]
fn an_unreadable_data_directory_is_one_line_and_exit_2() {
    let o = replay(Path::new("/nonexistent/novalog"), &["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no embedded log"));
}

#[tokio::test]
async fn bad_input_exits_2_and_a_violation_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let id = small_log(dir.path()).await;
    let d = dir.path();

    let check = replay(d, &["check"]);
    assert_eq!(check.status.code(), Some(1));
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(out.contains("novalog.intents/0/1  decode"), "{out}");

    let export = replay(d, &["export", "--topic", "intents"]);
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 2);

    let history = replay(d, &["history", &id.to_string(), "--json"]);
    assert_eq!(history.status.code(), Some(0), "{}", stderr(&history));
    assert!(String::from_utf8_lossy(&history.stdout).contains("ServerActionRequested"));

    for args in [
        vec!["history".to_owned(), Uuid::new_v4().to_string()],
        vec!["history".to_owned(), "req-unknown".to_owned()],
        vec!["export".to_owned(), "--topic".to_owned(), "nope".to_owned()],
        vec!["export".to_owned(), "--format".to_owned(), "xml".to_owned()],
        vec![
            "state-at".to_owned(),
            id.to_string(),
            "--at".to_owned(),
            "yesterday".to_owned(),
        ],
        vec![
            "state-at".to_owned(),
            Uuid::new_v4().to_string(),
            "--at".to_owned(),
            "2020-01-01T00:00:00Z".to_owned(),
        ],
        vec![
            "rebuild".to_owned(),
            "billing".to_owned(),
            "--into".to_owned(),
            "/tmp/x".to_owned(),
        ],
        vec![
            "dead-letters".to_owned(),
            "show".to_owned(),
            "ffff".to_owned(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = replay(d, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

/// `check` over a hand-made history: a version gap, a causation id that
/// names nothing and one event id used for two events are each reported
/// at their record.
#[tokio::test]
async fn check_names_the_records_that_break_envelope_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), one_partition()).unwrap();
    let id = Uuid::new_v4();
    let at = |version: u64, event_id: Uuid, causation: Option<Uuid>, event: Event| {
        let mut meta = Meta::origin(
            event_id,
            "req-x".into(),
            Actor::service("conductor"),
            id.to_string(),
        );
        meta.aggregate_version = version;
        meta.causation_id = causation;
        Record::new(
            "novalog.instances",
            "p",
            novalog_schemas::encode(&Envelope { meta, event }),
        )
    };
    let (e1, e2, reused) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    log.append(vec![
        at(
            1,
            e1,
            None,
            Event::Instance(InstanceEvent::InstanceUnlocked),
        ),
        at(
            2,
            e2,
            Some(e1),
            Event::Instance(InstanceEvent::InstanceUnlocked),
        ),
        // version 3 is missing
        at(
            4,
            reused,
            Some(Uuid::new_v4()),
            Event::Instance(InstanceEvent::InstanceUnlocked),
        ),
        at(
            5,
            reused,
            Some(e2),
            Event::Instance(InstanceEvent::InstanceLocked {
                locked_by: "admin".into(),
                reason: None,
            }),
        ),
    ])
    .await
    .unwrap();
    drop(log);
    let src = novalog_replay::Source::embedded(
        &dir.path().join("log"),
        novalog_runtime::Topics::new("novalog."),
    )
    .unwrap();
    let report = novalog_replay::check::check(&src, &novalog_replay::Silent)
        .await
        .unwrap();
    let found: Vec<(String, &str)> = report
        .violations
        .iter()
        .map(|v| (v.at.to_string(), v.rule))
        .collect();
    assert_eq!(
        found,
        vec![
            ("novalog.instances/0/2".to_owned(), "contiguous-version"),
            ("novalog.instances/0/3".to_owned(), "unique-event-id"),
            ("novalog.instances/0/2".to_owned(), "causation"),
        ],
        "{:?}",
        report.violations
    );
    assert_eq!(report.records, 4);
}

fn one_partition() -> EmbeddedOptions {
    EmbeddedOptions {
        default_partitions: 1,
        ..EmbeddedOptions::default()
    }
}
