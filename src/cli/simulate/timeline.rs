//! Pending records ordered by time, and the attack label a record may carry.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::record::Record;

/// Marks a record as part of an injected attack.
#[derive(Debug, Clone)]
pub struct Label {
    /// Index of the attack instance (see `attacks::Instance`).
    pub attack: usize,
    /// MITRE ATT&CK technique this step belongs to.
    pub technique: &'static str,
    /// The `event.action` Vigil's decoders give this line, when they give one.
    pub action: Option<&'static str>,
    pub source_ip: Option<Arc<str>>,
    pub user: Option<Arc<str>>,
}

/// A record waiting for its time.
#[derive(Debug)]
pub struct Entry {
    pub record: Record,
    pub label: Option<Label>,
    /// Insertion order: breaks ties between equal times deterministically.
    seq: u64,
}

impl Entry {
    fn key(&self) -> (i64, u64) {
        (self.record.time_ms, self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}

/// A min-heap of records by time.
#[derive(Debug, Default)]
pub struct Timeline {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// Labelled records still pending.
    pub labelled: usize,
}

impl Timeline {
    /// Schedules an unlabelled record.
    pub fn push(&mut self, record: Record) {
        self.push_entry(record, None);
    }

    /// Schedules a record, labelled or not.
    pub fn push_entry(&mut self, record: Record, label: Option<Label>) {
        self.seq += 1;
        if label.is_some() {
            self.labelled += 1;
        }
        self.heap.push(Reverse(Entry {
            record,
            label,
            seq: self.seq,
        }));
    }

    /// Time of the earliest pending record.
    pub fn peek_time(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse(e)| e.record.time_ms)
    }

    /// Removes the earliest pending record.
    pub fn pop(&mut self) -> Option<Entry> {
        let e = self.heap.pop()?.0;
        if e.label.is_some() {
            self.labelled -= 1;
        }
        Some(e)
    }
}
