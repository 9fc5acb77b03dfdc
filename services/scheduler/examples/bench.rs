//! Measures the scheduler: `cargo run -p novalog-scheduler --example bench
//! [hosts[:decisions] ...]` prints decisions per second and p99 latency per
//! cloud size.

fn main() {
    let runs: Vec<(usize, Option<usize>)> = std::env::args()
        .skip(1)
        .map(|a| {
            let (hosts, decisions) = match a.split_once(':') {
                Some((h, d)) => (h, Some(d.parse().expect("a decision count"))),
                None => (a.as_str(), None),
            };
            (hosts.parse().expect("a host count"), decisions)
        })
        .collect();
    let runs = if runs.is_empty() {
        vec![(1_000, None), (10_000, None), (100_000, None)]
    } else {
        runs
    };
    for (hosts, decisions) in runs {
        let decisions = decisions.unwrap_or((2_000_000 / hosts).clamp(2_000, 20_000));
        let (per_s, p99) = novalog_scheduler::bench::run(hosts, decisions);
        println!("hosts={hosts} decisions={decisions} decisions_per_s={per_s:.0} p99_us={p99:.1}");
    }
}
