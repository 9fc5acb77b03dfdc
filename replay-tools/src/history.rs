//! `history <server-id | request-id | project-id>`: every record that
//! concerns it, across topics, in log order.

use std::io::Write;

pub use novalog_history::{Entry, Subject};

use crate::records;
use crate::{Error, Progress, Result, Source};

/// Every record about `subject`, in log order, causes before effects
/// ([`novalog_history::select`], which the web console's timeline and
/// audit search call too).
pub async fn entries(
    src: &Source,
    subject: &Subject,
    progress: &dyn Progress,
) -> Result<Vec<Entry>> {
    let topics = src.existing_topics().await;
    let all = src.read_all(&topics, progress).await?;
    let out = novalog_history::select(all, subject, &src.topics().instances);
    if out.is_empty() {
        return Err(Error::BadInput(format!(
            "no record concerns {}",
            subject.needle()
        )));
    }
    Ok(out)
}

/// Prints a history as a table, or JSON lines.
pub fn print(entries: &[Entry], json: bool, namespace: &str, out: &mut dyn Write) -> Result<()> {
    if !json {
        writeln!(out, "{}", records::line_header())?;
    }
    for e in entries {
        if json {
            let v = records::to_json(&e.record, &e.env, e.state.as_ref());
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{}",
                records::to_line(&e.record, &e.env, e.state.as_ref(), namespace)
            )?;
        }
    }
    Ok(())
}
