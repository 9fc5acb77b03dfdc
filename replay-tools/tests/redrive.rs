//! `dead-letters redrive` while another process holds the embedded log
//! (a running `novalog`): the record goes to the spool, and the holder's
//! drain appends it; what is not one of the cloud's records is set aside.

use std::process::Command;

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::{EventLog, Record};
use novalog_replay::spool;
use novalog_runtime::Topics;
use novalog_schemas::events::DeadLetter;
use novalog_schemas::{Actor, Envelope, Event, Meta};
use uuid::Uuid;

#[tokio::test]
async fn a_redrive_while_the_log_is_held_is_spooled_and_appended_by_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        default_partitions: 1,
        ..EmbeddedOptions::default()
    };
    // This test plays the running novalog: it holds the log.
    let log = EmbeddedLog::open(dir.path().join("log"), opts).unwrap();
    let letter_id = Uuid::new_v4();
    let letter = Envelope {
        meta: Meta::origin(
            letter_id,
            String::new(),
            Actor::service("conductor"),
            "novalog.intents".into(),
        ),
        event: Event::DeadLetter(Box::new(DeadLetter {
            source_topic: "novalog.intents".into(),
            partition: 0,
            offset: 0,
            consumer: "conductor".into(),
            error: "decode: unknown record type".into(),
            key: b"demo".to_vec(),
            value: b"original".to_vec(),
        })),
    };
    log.append(vec![Record::new(
        "novalog.dead-letter",
        "novalog.intents",
        novalog_schemas::encode(&letter),
    )])
    .await
    .unwrap();
    let fixed = dir.path().join("fixed.bin");
    std::fs::write(&fixed, b"fixed").unwrap();

    let o = Command::new(env!("CARGO_BIN_EXE_novalog-replay"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--quiet", "dead-letters", "redrive"])
        .arg(&letter_id.to_string()[..8])
        .arg("--value-file")
        .arg(&fixed)
        .env_remove("NOVALOG_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("queued"), "{stdout}");
    let spooled = spool::dir(dir.path()).join(format!("{letter_id}.redrive"));
    assert!(spooled.exists());
    let appended_yet = log
        .end_offsets("novalog.intents")
        .await
        .map(|e| e.iter().sum::<i64>())
        .unwrap_or(0);
    assert_eq!(appended_yet, 0);

    // A file that is not a redrive of this cloud is set aside.
    std::fs::write(
        spool::dir(dir.path()).join("other.redrive"),
        br#"{"topic":"elsewhere.intents","key":"","value":"00"}"#,
    )
    .unwrap();

    let topics = Topics::new("novalog.");
    let appended = spool::drain_once(&log, &spool::dir(dir.path()), &topics)
        .await
        .unwrap();
    assert_eq!(appended, 1);
    let recs = log.read("novalog.intents", 0, 0, 10).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (&recs[0].key[..], &recs[0].value[..]),
        (&b"demo"[..], &b"fixed"[..])
    );
    assert!(!spooled.exists());
    assert!(spool::dir(dir.path()).join("other.rejected").exists());
    // Nothing is appended twice.
    let again = spool::drain_once(&log, &spool::dir(dir.path()), &topics)
        .await
        .unwrap();
    assert_eq!(again, 0);
}
