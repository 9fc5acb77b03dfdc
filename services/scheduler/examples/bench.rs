//! Measures the scheduler: `cargo run -p novalog-scheduler --example bench
//! [hosts ...]` prints decisions per second and p99 latency per cloud size.

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("host counts"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    for hosts in sizes {
        let decisions = (2_000_000 / hosts).clamp(2_000, 20_000);
        let (per_s, p99) = novalog_scheduler::bench::run(hosts, decisions);
        println!("hosts={hosts} decisions={decisions} decisions_per_s={per_s:.0} p99_us={p99:.1}");
    }
}
