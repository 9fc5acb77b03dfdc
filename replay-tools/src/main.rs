//! `novalog-replay`: audit and replay over Novalog's log. Parses arguments,
//! opens the log read-only and calls the library; every subcommand's logic
//! is in `novalog_replay`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use novalog_replay::rebuild::Service;
use novalog_replay::{Error, Progress, Source};
use novalog_runtime::Config;
use novalog_runtime::config::Backend;
use novalog_runtime::observe::LogFormat;
use uuid::Uuid;

const EXAMPLES: &str = "\
Examples (on the `make run` cloud, data in ./data):
  novalog-replay --data-dir data history 3f2a…             every record of one server
  novalog-replay --data-dir data history req-9c1d…         one API call through every service
  novalog-replay --data-dir data state-at 3f2a… --at 2026-12-01T14:03:00Z
  novalog-replay --data-dir data rebuild api --into /tmp/rebuilt
  novalog-replay diff data/api /tmp/rebuilt/api
  novalog-replay --data-dir data verify
  novalog-replay --data-dir data check
  novalog-replay --data-dir data export --format csv --topic instances > instances.csv
  novalog-replay --data-dir data tail --follow
  novalog-replay --data-dir data dead-letters list
On Kafka: --config novalog.toml (log.backend = \"kafka\") or --kafka host:9092.
Exit status: 0 ok, 1 check or verify found a difference, 2 bad input.";

/// Audit and replay: the log read back as the truth.
#[derive(Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Args {
    /// The services' TOML configuration (NOVALOG_<SECTION>__<OPTION> too).
    #[arg(long, env = "NOVALOG_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`): the embedded log is in
    /// <data-dir>/log, each service's store in <data-dir>/<service>.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Read Kafka at these bootstrap servers (overrides the config).
    #[arg(long, global = true)]
    kafka: Option<String>,
    /// Topic namespace (overrides `log.namespace`).
    #[arg(long, global = true)]
    namespace: Option<String>,
    /// No progress bars and no summary line.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Log lines (on stderr, warnings and errors unless RUST_LOG says
    /// otherwise) as text or as one JSON object per line.
    #[arg(long, value_enum, env = "NOVALOG_LOG_FORMAT", default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Load and validate the configuration, say so, and exit (status 1 and
    /// the reason when it is invalid).
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every record that concerns a server, a request or a project, in log order.
    History {
        /// A server id, a request id (req-…) or a project id.
        subject: String,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The server as GET /v2.1/servers/{id} showed it at an instant.
    StateAt {
        server: String,
        /// An RFC 3339 time, or a record as topic/partition/offset.
        #[arg(long)]
        at: String,
        #[arg(long, default_value = "2.1")]
        microversion: String,
        /// Where the per-instance index lives (default <data-dir>/replay-index).
        #[arg(long)]
        index: Option<PathBuf>,
    },
    /// Folds the log into fresh projection stores, side effects off.
    Rebuild {
        /// api, conductor, scheduler, compute, billing or all.
        service: String,
        /// A new directory; each store goes to <into>/<service>.
        #[arg(long)]
        into: PathBuf,
    },
    /// Compares two projection stores key by key.
    Diff { a: PathBuf, b: PathBuf },
    /// Rebuilds every projection up to the live stores' offsets and compares.
    Verify {
        /// Where to rebuild (default: a temporary directory).
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
    /// Decoding, envelope and domain invariants over the whole history.
    Check,
    /// Decoded records to stdout or a file.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        topic: Option<String>,
        /// RFC 3339; records that occurred at or after.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339; records that occurred before.
        #[arg(long)]
        until: Option<String>,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Decoded records as they are appended.
    Tail {
        #[arg(long)]
        topic: Option<String>,
        /// Records of each partition to show first.
        #[arg(long, short = 'n', default_value_t = 10)]
        last: i64,
        /// Keep printing records as they are appended.
        #[arg(long, short)]
        follow: bool,
    },
    /// The dead-letter topic.
    DeadLetters {
        #[command(subcommand)]
        cmd: DeadCmd,
    },
}

#[derive(Subcommand)]
enum DeadCmd {
    /// What failed, where, why.
    List,
    /// One dead letter in full, with its record decoded where it decodes.
    Show { id: String },
    /// Appends the record to its source topic again (after the cause is fixed).
    Redrive {
        id: String,
        /// Append this file's bytes instead of the original record.
        #[arg(long)]
        value_file: Option<PathBuf>,
    },
}

/// An indicatif bar on stderr, drawn only on a terminal and without --quiet.
struct Bar(ProgressBar);

impl Bar {
    fn new(quiet: bool, what: &str) -> Self {
        let bar = ProgressBar::new(0);
        if quiet || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>8} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Bar(bar)
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Ends with 1 (a difference or violation was found).
struct Found;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    novalog_runtime::observe::init_logging_at(args.log_format, "warn");
    if args.check_config {
        return match config(&args) {
            Ok(cfg) => {
                println!(
                    "configuration OK: {} (log backend {:?}, data_dir {})",
                    args.config.as_ref().map_or_else(
                        || "defaults and environment (no file)".to_owned(),
                        |p| p.display().to_string()
                    ),
                    cfg.log.backend,
                    cfg.data_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("novalog-replay: {e}");
                ExitCode::from(1)
            }
        };
    }
    match run(args).await {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(Found)) => ExitCode::from(1),
        Err(e) => {
            eprintln!("novalog-replay: {e}");
            ExitCode::from(2)
        }
    }
}

fn summary(quiet: bool, what: &str, records: u64, started: Instant) {
    if quiet {
        return;
    }
    let s = started.elapsed().as_secs_f64();
    eprintln!(
        "{what}: {records} records in {s:.2} s ({:.0} records/s)",
        records as f64 / s.max(1e-9)
    );
}

fn config(args: &Args) -> Result<Config, Error> {
    let mut cfg =
        Config::load(args.config.as_deref()).map_err(|e| Error::BadInput(e.to_string()))?;
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(k) = &args.kafka {
        cfg.log.backend = Backend::Kafka;
        cfg.log.bootstrap_servers = k.clone();
    }
    if let Some(n) = &args.namespace {
        cfg.log.namespace = n.clone();
    }
    Ok(cfg)
}

fn open(cfg: &Config) -> Result<Source, Error> {
    match cfg.log.backend {
        Backend::Embedded => Source::embedded(&cfg.data_dir.join("log"), cfg.topics()),
        Backend::Kafka => {
            let log = novalog_log::kafka::KafkaLog::new(novalog_log::kafka::KafkaOptions {
                bootstrap_servers: cfg.log.bootstrap_servers.clone(),
                partitions: cfg.log.partitions,
                replication_factor: cfg.log.replication_factor,
                properties: cfg.log.kafka_properties.clone(),
                ..Default::default()
            })
            .map_err(|e| Error::BadInput(format!("kafka: {e}")))?;
            Ok(Source::log(Arc::new(log), cfg.topics()))
        }
    }
}

/// A source that may append (redrive). The embedded log has one writer:
/// this works only while no service holds it.
fn open_writable(cfg: &Config) -> Result<Source, Error> {
    match cfg.log.backend {
        Backend::Kafka => open(cfg),
        Backend::Embedded => {
            let dir = cfg.data_dir.join("log");
            if !dir.is_dir() {
                return Err(Error::BadInput(format!(
                    "no embedded log in {}",
                    dir.display()
                )));
            }
            let log = novalog_log::embedded::EmbeddedLog::open(
                &dir,
                novalog_log::embedded::EmbeddedOptions {
                    default_partitions: cfg.log.partitions,
                    sync: true,
                },
            )
            .map_err(|e| {
                Error::BadInput(format!(
                    "cannot open the embedded log for writing (is novalog running? stop it first): {e}"
                ))
            })?;
            Ok(Source::log(Arc::new(log), cfg.topics()))
        }
    }
}

async fn run(args: Args) -> Result<Option<Found>, Error> {
    let cfg = config(&args)?;
    let quiet = args.quiet;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let started = Instant::now();
    let Some(cmd) = &args.cmd else {
        return Err(Error::BadInput(
            "a subcommand is needed: see novalog-replay --help".to_owned(),
        ));
    };
    match cmd {
        Cmd::History { subject, json } => {
            let src = open(&cfg)?;
            let subject = novalog_replay::history::Subject::parse(subject);
            let entries = {
                let bar = Bar::new(quiet, "read");
                novalog_replay::history::entries(&src, &subject, &bar).await?
            };
            novalog_replay::history::print(&entries, *json, &cfg.log.namespace, &mut out)?;
        }
        Cmd::StateAt {
            server,
            at,
            microversion,
            index,
        } => {
            let id = Uuid::parse_str(server)
                .map_err(|_| Error::BadInput(format!("not a server id: {server}")))?;
            let at = novalog_replay::state_at::At::parse(at)?;
            let version = novalog_replay::state_at::parse_version(microversion)?;
            let src = open(&cfg)?;
            let path = index
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("replay-index"));
            let index = novalog_replay::index::Index::open(&path)?;
            let inst = novalog_replay::state_at::instance_at(&src, &index, id, &at).await?;
            let now = match &at {
                novalog_replay::state_at::At::Time(t) => *t,
                novalog_replay::state_at::At::Record(_) => inst.updated_at_ms,
            };
            let body = novalog_replay::state_at::server_body(&inst, version, now);
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            )?;
        }
        Cmd::Rebuild { service, into } => {
            let services = Service::parse(service)?;
            let src = open(&cfg)?;
            // Several services fold side by side, each with its own bar.
            let bars = if quiet || !std::io::stderr().is_terminal() {
                indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
            } else {
                indicatif::MultiProgress::new()
            };
            let all = novalog_replay::rebuild::rebuild_all(&src, &cfg, &services, into, |s| {
                let bar = Bar::new(quiet, s.dir_name());
                bars.add(bar.0.clone());
                Arc::new(bar) as Arc<dyn Progress>
            })
            .await?;
            if !quiet {
                for (s, stats) in &all.services {
                    eprintln!(
                        "rebuild {}: {} records in {:.2} s ({:.0} records/s; busy: read+decode {:.2} s, fold {:.2} s, write {:.2} s)",
                        s.dir_name(),
                        stats.records,
                        stats.seconds,
                        stats.per_second(),
                        stats.read_s,
                        stats.fold_s,
                        stats.write_s
                    );
                }
            }
            summary(quiet, "rebuild", all.records(), started);
            // The index state-at answers from is built alongside.
            let index = novalog_replay::index::Index::open(&cfg.data_dir.join("replay-index"));
            if let Ok(index) = index {
                index.catch_up(&src, &novalog_replay::Silent).await?;
            }
        }
        Cmd::Diff { a, b } => {
            let diffs = novalog_replay::rebuild::diff(a, b)?;
            novalog_replay::rebuild::print_diff(
                &diffs,
                (&a.display().to_string(), &b.display().to_string()),
                &mut out,
            )?;
            if !diffs.is_empty() {
                writeln!(out, "{} keys differ", diffs.len())?;
                return Ok(Some(Found));
            }
            writeln!(out, "identical")?;
        }
        Cmd::Verify { scratch } => {
            let src = open(&cfg)?;
            let mut services = vec![
                Service::Api,
                Service::Conductor,
                Service::Scheduler,
                Service::Compute,
                Service::Billing,
            ];
            // What this data directory holds a store of, and can be
            // replayed (say why not for the rest).
            services.retain(|s| {
                let why_not = match s.replayable(&cfg) {
                    Err(why) => Some(why),
                    Ok(()) if !cfg.data_dir.join(s.dir_name()).is_dir() => {
                        Some(format!("no live store in {}", cfg.data_dir.display()))
                    }
                    Ok(()) => None,
                };
                if let Some(why) = &why_not {
                    let _ = writeln!(out, "{}: not verified: {why}", s.dir_name());
                }
                why_not.is_none()
            });
            if services.is_empty() {
                return Err(Error::BadInput(format!(
                    "no projection store to verify in {}",
                    cfg.data_dir.display()
                )));
            }
            let verified = {
                let bar = Bar::new(quiet, "verify");
                novalog_replay::rebuild::verify(
                    &src,
                    &cfg,
                    &cfg.data_dir,
                    &services,
                    scratch.clone(),
                    &bar,
                )
                .await?
            };
            let mut found = false;
            for v in &verified {
                if v.differences.is_empty() {
                    writeln!(
                        out,
                        "{}: byte-equal ({} records folded)",
                        v.service.dir_name(),
                        v.stats.records
                    )?;
                } else {
                    found = true;
                    writeln!(
                        out,
                        "{}: {} keys differ from the log; first:",
                        v.service.dir_name(),
                        v.differences.len()
                    )?;
                    let live = format!("live {}", v.service.dir_name());
                    novalog_replay::rebuild::print_diff(
                        &v.differences[..v.differences.len().min(10)],
                        (&live, "from the log"),
                        &mut out,
                    )?;
                }
            }
            let records = verified.iter().map(|v| v.stats.records).sum();
            summary(quiet, "verify", records, started);
            if found {
                return Ok(Some(Found));
            }
        }
        Cmd::Check => {
            let src = open(&cfg)?;
            let report = {
                let bar = Bar::new(quiet, "check");
                novalog_replay::check::check_with(&src, &cfg.quota, &bar).await?
            };
            novalog_replay::check::print(&report, &mut out)?;
            summary(quiet, "check", report.records, started);
            if !report.violations.is_empty() {
                return Ok(Some(Found));
            }
        }
        Cmd::Export {
            format,
            topic,
            since,
            until,
            output,
        } => {
            let format = novalog_replay::export::Format::parse(format)?;
            let src = open(&cfg)?;
            let filter = novalog_replay::export::Filter {
                topic: topic.as_deref().map(|t| src.topic(t)).transpose()?,
                since: since
                    .as_deref()
                    .map(novalog_replay::parse_time)
                    .transpose()?,
                until: until
                    .as_deref()
                    .map(novalog_replay::parse_time)
                    .transpose()?,
            };
            let bar = Bar::new(quiet, "export");
            let n = match output {
                Some(path) => {
                    let file = std::fs::File::create(path).map_err(|e| {
                        Error::BadInput(format!("cannot write {}: {e}", path.display()))
                    })?;
                    let mut w = std::io::BufWriter::new(file);
                    let n =
                        novalog_replay::export::export(&src, format, &filter, &mut w, &bar).await?;
                    w.flush()?;
                    n
                }
                None => {
                    let mut w = std::io::BufWriter::new(&mut out);
                    novalog_replay::export::export(&src, format, &filter, &mut w, &bar).await?
                }
            };
            drop(bar);
            summary(quiet, "export", n, started);
        }
        Cmd::Tail {
            topic,
            last,
            follow,
        } => {
            let src = open(&cfg)?;
            let topics = match topic {
                Some(t) => vec![src.topic(t)?],
                None => src.existing_topics().await,
            };
            let mut w = std::io::stdout();
            novalog_replay::export::tail(
                &src,
                &topics,
                *last,
                *follow,
                &mut w,
                novalog_runtime::termination_signal(),
            )
            .await?;
        }
        Cmd::DeadLetters { cmd } => match cmd {
            DeadCmd::List => {
                let src = open(&cfg)?;
                let letters = novalog_replay::dead_letters::list(&src).await?;
                novalog_replay::dead_letters::print_list(&letters, &cfg.log.namespace, &mut out)?;
            }
            DeadCmd::Show { id } => {
                let src = open(&cfg)?;
                let l = novalog_replay::dead_letters::find(&src, id).await?;
                novalog_replay::dead_letters::print_one(&l, &mut out)?;
            }
            DeadCmd::Redrive { id, value_file } => {
                let value = value_file
                    .as_ref()
                    .map(|p| {
                        std::fs::read(p).map_err(|e| {
                            Error::BadInput(format!("cannot read {}: {e}", p.display()))
                        })
                    })
                    .transpose()?;
                match open_writable(&cfg) {
                    Ok(src) => {
                        let l = novalog_replay::dead_letters::redrive(&src, id, value).await?;
                        writeln!(out, "redriven {} to {}", l.id, l.letter.source_topic)?;
                    }
                    // A running novalog holds the embedded log: it appends
                    // what is left in its spool.
                    Err(Error::BadInput(e))
                        if cfg.log.backend == Backend::Embedded
                            && e.to_lowercase().contains("lock") =>
                    {
                        let src = open(&cfg)?;
                        let l = novalog_replay::dead_letters::find(&src, id).await?;
                        let record = novalog_replay::dead_letters::redrive_record(&l, value);
                        let spool = novalog_replay::spool::dir(&cfg.data_dir);
                        let file =
                            novalog_replay::spool::enqueue(&spool, &l.id.to_string(), &record)
                                .map_err(|e| Error::BadInput(e.to_string()))?;
                        writeln!(
                            out,
                            "queued {} for the running novalog ({}): it appends it to {} within a second",
                            l.id,
                            file.display(),
                            l.letter.source_topic
                        )?;
                    }
                    Err(e) => return Err(e),
                }
            }
        },
    }
    Ok(None)
}
