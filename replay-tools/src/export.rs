//! `export` (decoded records, JSON lines or CSV) and `tail` (records as
//! they are appended).

use std::io::Write;
use std::time::Duration;

use novalog_log::Consumed;

use crate::records::{self, CSV_HEADER};
use crate::{Error, Progress, Result, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(Error::BadInput(format!(
                "unknown format {other} (jsonl, csv)"
            ))),
        }
    }
}

/// Which records to export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Full topic name; `None`: every topic.
    pub topic: Option<String>,
    /// Occurred at or after (ms).
    pub since: Option<i64>,
    /// Occurred before (ms).
    pub until: Option<i64>,
}

/// One record in `format`; a record that does not decode is exported with
/// its error (JSON) or skipped with a note on stderr (CSV).
fn write_record(c: &Consumed, format: Format, out: &mut dyn Write) -> Result<bool> {
    match novalog_schemas::decode(&c.value) {
        Ok(env) => {
            match format {
                Format::Jsonl => writeln!(out, "{}", records::to_json(c, &env, None))?,
                Format::Csv => writeln!(out, "{}", records::to_csv(c, &env))?,
            }
            Ok(true)
        }
        Err(e) => {
            if format == Format::Jsonl {
                let v = serde_json::json!({
                    "topic": c.topic, "partition": c.partition, "offset": c.offset,
                    "appended_at": crate::format_time(c.timestamp_ms),
                    "undecodable": e.to_string(),
                });
                writeln!(out, "{v}")?;
            }
            Ok(false)
        }
    }
}

/// Exports the records `filter` selects, in log order. Returns how many.
pub async fn export(
    src: &Source,
    format: Format,
    filter: &Filter,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<u64> {
    let topics = match &filter.topic {
        Some(t) => vec![t.clone()],
        None => src.existing_topics().await,
    };
    let all = src.read_all(&topics, progress).await?;
    if format == Format::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut n = 0;
    for c in &all {
        let time = novalog_schemas::decode(&c.value)
            .map(|e| e.meta.occurred_at_ms)
            .unwrap_or(c.timestamp_ms);
        if filter.since.is_some_and(|s| time < s) || filter.until.is_some_and(|u| time >= u) {
            continue;
        }
        write_record(c, format, out)?;
        n += 1;
    }
    Ok(n)
}

/// Prints the last `last` records of each partition of `topics`, then,
/// with `follow`, every record appended after, until `stop` resolves.
pub async fn tail(
    src: &Source,
    topics: &[String],
    last: i64,
    follow: bool,
    out: &mut (dyn Write + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut positions = Vec::new();
    for t in topics {
        for (p, end) in src.end_offsets(t).await?.into_iter().enumerate() {
            positions.push((t.clone(), p as i32, (end - last).max(0)));
        }
    }
    tokio::pin!(stop);
    loop {
        let mut batch = Vec::new();
        for (t, p, next) in positions.iter_mut() {
            let end = src
                .end_offsets(t)
                .await?
                .get(*p as usize)
                .copied()
                .unwrap_or(0);
            if *next < end {
                src.scan(t, *p, *next, end, |r| batch.push(crate::source::owned(r)))
                    .await?;
                *next = end;
            }
        }
        batch.sort_by_key(|c| (c.timestamp_ms, c.partition, c.offset));
        for c in &batch {
            write_record(c, Format::Jsonl, out)?;
        }
        out.flush()?;
        if !follow {
            return Ok(());
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        src.refresh()?;
    }
}

/// The records of a topic that `export` of it gives (for tests and docs).
pub async fn count(src: &Source, topic: &str) -> Result<i64> {
    Ok(src.end_offsets(topic).await?.iter().sum())
}
