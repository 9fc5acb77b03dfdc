//! `dead-letters list | show <id> | redrive <id>`: the records a service
//! could not decode or apply, where and why; redrive appends the original
//! (or an operator's fixed copy) to its source topic again.

use std::io::Write;

use novalog_log::Record;
use novalog_schemas::Event;
use novalog_schemas::events::DeadLetter;
use uuid::Uuid;

use crate::records::Position;
use crate::{Error, Result, Silent, Source, format_time};

/// One dead letter and where it is.
#[derive(Debug, Clone)]
pub struct Letter {
    pub id: Uuid,
    pub at: Position,
    pub occurred_at_ms: i64,
    pub letter: DeadLetter,
}

/// Every dead letter, oldest first.
pub async fn list(src: &Source) -> Result<Vec<Letter>> {
    let topic = src.topics().dead_letter.clone();
    if src.end_offsets(&topic).await.is_err() {
        return Ok(Vec::new());
    }
    let all = src.read_all(&[topic], &Silent).await?;
    Ok(all
        .iter()
        .filter_map(|c| {
            let env = novalog_schemas::decode(&c.value).ok()?;
            let Event::DeadLetter(d) = env.event else {
                return None;
            };
            Some(Letter {
                id: env.meta.event_id,
                at: Position::of(c),
                occurred_at_ms: env.meta.occurred_at_ms,
                letter: *d,
            })
        })
        .collect())
}

/// The dead letter `id` (its event id, or a unique prefix of it).
pub async fn find(src: &Source, id: &str) -> Result<Letter> {
    let all = list(src).await?;
    let hits: Vec<_> = all
        .into_iter()
        .filter(|l| l.id.to_string().starts_with(id))
        .collect();
    match hits.len() {
        1 => Ok(hits.into_iter().next().expect("one")),
        0 => Err(Error::BadInput(format!("no dead letter {id}"))),
        n => Err(Error::BadInput(format!(
            "{id} names {n} dead letters; give more of the id"
        ))),
    }
}

pub fn print_list(letters: &[Letter], namespace: &str, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{:<36}  {:<24}  {:<12}  {:<24}  ERROR",
        "ID", "TIME", "CONSUMER", "SOURCE"
    )?;
    for l in letters {
        let d = &l.letter;
        let topic = d
            .source_topic
            .strip_prefix(namespace)
            .unwrap_or(&d.source_topic);
        writeln!(
            out,
            "{:<36}  {:<24}  {:<12}  {:<24}  {}",
            l.id,
            format_time(l.occurred_at_ms),
            d.consumer,
            format!("{topic}/{}/{}", d.partition, d.offset),
            d.error
        )?;
    }
    Ok(())
}

pub fn print_one(l: &Letter, out: &mut dyn Write) -> Result<()> {
    let d = &l.letter;
    writeln!(out, "id:        {}", l.id)?;
    writeln!(
        out,
        "at:        {} ({})",
        l.at,
        format_time(l.occurred_at_ms)
    )?;
    writeln!(out, "consumer:  {}", d.consumer)?;
    writeln!(
        out,
        "source:    {}/{}/{}",
        d.source_topic, d.partition, d.offset
    )?;
    writeln!(out, "error:     {}", d.error)?;
    writeln!(out, "key:       {}", String::from_utf8_lossy(&d.key))?;
    match novalog_schemas::decode(&d.value) {
        Ok(env) => writeln!(
            out,
            "record:    {}",
            serde_json::to_string(&env).unwrap_or_default()
        )?,
        Err(e) => {
            let hex: String = d
                .value
                .iter()
                .take(256)
                .map(|b| format!("{b:02x}"))
                .collect();
            writeln!(
                out,
                "record:    {} bytes, does not decode ({e}): {hex}",
                d.value.len()
            )?;
        }
    }
    Ok(())
}

/// Appends dead letter `id`'s record to its source topic again, with
/// `value` instead of the original bytes when the operator fixed it.
/// Returns where it landed.
pub async fn redrive(src: &Source, id: &str, value: Option<Vec<u8>>) -> Result<Letter> {
    let l = find(src, id).await?;
    src.append(vec![redrive_record(&l, value)]).await?;
    Ok(l)
}

/// The record a redrive of `l` appends: its original key, and its original
/// value unless the operator fixed it (`value`).
pub fn redrive_record(l: &Letter, value: Option<Vec<u8>>) -> Record {
    let d = &l.letter;
    Record::new(
        d.source_topic.clone(),
        d.key.clone(),
        value.unwrap_or_else(|| d.value.clone()),
    )
}
