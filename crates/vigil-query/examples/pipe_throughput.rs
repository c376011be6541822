//! Measures how fast the pipe executor consumes events, without the ledger
//! scan or JSON decoding in front of it.
//!
//! ```text
//! cargo run --release -p vigil-query --example pipe_throughput [EVENTS]
//! ```

use std::time::Instant;

use serde_json::json;
use vigil_event::Event;
use vigil_query::{parse_search, Executor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 200_000,
    };
    let events: Vec<Event> = (0..n)
        .map(|i| {
            Event::from_json(
                json!({
                    "@timestamp": format!("2026-03-01T{:02}:{:02}:{:02}Z", (i / 3600) % 24, (i / 60) % 60, i % 60),
                    "user": {"name": format!("user{}", i % 500)},
                    "source": {"ip": format!("10.0.{}.{}", (i / 256) % 256, i % 256)},
                    "http": {"response": {"bytes": (i * 7919) % 100_000}},
                    "event": {"outcome": if i % 3 == 0 { "failure" } else { "success" }},
                    "host": {"name": format!("host{}", i % 40)},
                }),
                16,
            )
        })
        .collect::<Result<_, _>>()?;
    let searches = [
        "* | stats count() by user.name",
        "* | stats count(), dc(source.ip), avg(http.response.bytes), p95(http.response.bytes) by host.name",
        "* | timechart span=1m count() by host.name",
        "* | top 10 source.ip",
        "* | where http.response.bytes > 50000 | fields user.name, http.response.bytes",
        "* | sort -http.response.bytes | head 10",
    ];
    println!("{n} events per search");
    for q in searches {
        let s = parse_search(q)?;
        let started = Instant::now();
        let mut ex = Executor::new(&s.pipeline, 100)?;
        for ev in &events {
            ex.push(ev);
        }
        let out = ex.finish();
        let secs = started.elapsed().as_secs_f64();
        let rows = out.table.map_or(out.hits.len(), |t| t.rows.len());
        println!(
            "{:>10.0} events/s  {:>7.1} ms  {rows:>6} results  partial={}  {q}",
            n as f64 / secs,
            secs * 1000.0,
            out.partial_reason.is_some()
        );
    }
    Ok(())
}
