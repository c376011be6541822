//! First-seen baselines: bounded sets of what has been seen, with a
//! learning period during which nothing new is alerted.

use std::collections::HashSet;

/// A bounded set of known values with its learning period.
#[derive(Debug, Default, Clone)]
pub(crate) struct Known {
    set: HashSet<Box<str>>,
    /// End of the learning period (event time, ms), from the first value.
    pub learn_until: Option<i64>,
    /// New values neither learnt nor alerted because the set was full.
    pub full: u64,
}

/// What [`Known::see`] concluded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Known already, or learnt during the learning period.
    Known,
    /// New after the learning period: alert (it is now known).
    New,
    /// New but the set is full: ignored.
    Full,
}

impl Known {
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Records `value` seen at `t`.
    pub fn see(&mut self, value: &str, t: i64, learning_ms: i64, max: usize) -> Seen {
        let until = *self
            .learn_until
            .get_or_insert_with(|| t.saturating_add(learning_ms));
        if self.set.contains(value) {
            return Seen::Known;
        }
        if self.set.len() >= max {
            self.full += 1;
            return Seen::Full;
        }
        self.set.insert(Box::from(value));
        if t < until {
            Seen::Known
        } else {
            Seen::New
        }
    }
}
