//! The labels file: NDJSON naming every attack line, then one summary per
//! attack instance, so a scorer can compute recall and detection delay.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::attacks::Instance;
use super::record::{rfc3339, Record};
use super::timeline::Label;

/// First and last output line and line count of each instance as written.
#[derive(Debug)]
pub struct Tracker {
    seen: Vec<(u64, u64, u64)>,
}

impl Tracker {
    /// A tracker for `n` attack instances.
    pub fn new(n: usize) -> Tracker {
        Tracker {
            seen: vec![(0, 0, 0); n],
        }
    }

    /// Notes that instance `attack` produced output line `line` (1-based).
    pub fn saw(&mut self, attack: usize, line: u64) {
        let s = &mut self.seen[attack];
        if s.0 == 0 {
            s.0 = line;
        }
        s.1 = line;
        s.2 += 1;
    }
}

/// The open labels file.
pub struct Labels {
    out: BufWriter<File>,
    buf: Vec<u8>,
}

impl Labels {
    /// Creates (truncates) the labels file.
    pub fn create(path: &Path) -> anyhow::Result<Labels> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Labels {
            out: BufWriter::new(f),
            buf: Vec::new(),
        })
    }

    /// One `"type":"event"` line for output line `line`.
    pub fn event(
        &mut self,
        inst: &Instance,
        l: &Label,
        rec: &Record,
        line: u64,
    ) -> anyhow::Result<()> {
        let mut v = json!({
            "type": "event",
            "attack_id": inst.id,
            "attack": inst.kind.name(),
            "technique": l.technique,
            "line": line,
            "time": rfc3339(rec.time_ms),
            "source": rec.source.name(),
            "host.name": &*rec.host,
        });
        if let Some(ip) = &l.source_ip {
            v["source.ip"] = json!(&**ip);
        }
        if let Some(u) = &l.user {
            v["user.name"] = json!(&**u);
        }
        if let Some(a) = l.action {
            v["event.action"] = json!(a);
        }
        self.write(&v)
    }

    fn write(&mut self, v: &Value) -> anyhow::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, v)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf).context("writing labels")
    }

    /// One `"type":"attack"` summary per instance, in planning order, then flush.
    pub fn finish(&mut self, instances: &[Instance], t: &Tracker) -> anyhow::Result<()> {
        for (i, inst) in instances.iter().enumerate() {
            let (first, last, n) = t.seen[i];
            let ips: Vec<&str> = inst.source_ips.iter().map(|s| &**s).collect();
            let users: Vec<&str> = inst.users.iter().map(|s| &**s).collect();
            let v = json!({
                "type": "attack",
                "attack_id": inst.id,
                "attack": inst.kind.name(),
                "technique": inst.kind.technique(),
                "platform": inst.platform,
                "host.name": &*inst.host,
                "start": rfc3339(inst.start_ms),
                "end": rfc3339(inst.end_ms),
                "events": n,
                "first_line": first,
                "last_line": last,
                "source.ip": ips,
                "user.name": users,
                "description": inst.description,
            });
            self.write(&v)?;
        }
        self.out.flush().context("writing labels")
    }
}
