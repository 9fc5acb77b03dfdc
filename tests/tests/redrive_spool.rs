//! A running `novalog` on the embedded log appends what
//! `novalog-replay dead-letters redrive` left in its spool (the replay
//! tool cannot open the log the running process holds).

use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_log::Record;
use novalog_tests::test_config;

#[tokio::test]
async fn a_running_novalog_appends_a_spooled_redrive() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let system = System::start(&cfg, None).await.unwrap();
    let topic = system.topics.intents.clone();
    let before: i64 = system.log.end_offsets(&topic).await.unwrap().iter().sum();
    // Not a record the conductor can decode: it is dead-lettered again,
    // which is all this test needs to see it was appended.
    let record = Record::new(topic.clone(), b"demo".to_vec(), b"redriven".to_vec());
    let spool = novalog_replay::spool::dir(&cfg.data_dir);
    let file = novalog_replay::spool::enqueue(&spool, "5f1c-test", &record).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now: i64 = system.log.end_offsets(&topic).await.unwrap().iter().sum();
        if now > before && !file.exists() {
            break;
        }
        assert!(Instant::now() < deadline, "the spool was not drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    system.stop().await.unwrap();
}
