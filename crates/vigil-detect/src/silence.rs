//! Per-source arrival patterns for `vigil.source_silent`.
//!
//! Each source keeps the time it was last heard, an exponentially
//! weighted mean of the gaps between its events and the longest gap seen
//! lately (halved every [`MAX_GAP_HALF_LIFE_MS`] of event time, so that a
//! nightly lull learnt once keeps covering the next nights). Silence is
//! judged by [`Silence::tick`], not by events: a source that stopped sends
//! nothing that could trigger anything.

use crate::FastMap;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::config::SourceSilent;

/// How fast the longest gap is forgotten: a week of event time halves it.
pub const MAX_GAP_HALF_LIFE_MS: f64 = 7.0 * 86_400_000.0;

/// What is known of one source.
#[derive(Debug, Clone)]
pub(crate) struct Source<E> {
    /// Newest event time heard.
    pub last: i64,
    /// Moving mean of the gaps, ms.
    pub mean_gap: f64,
    /// Longest gap lately, ms (decaying).
    pub max_gap: f64,
    /// Gaps observed (saturating).
    pub gaps: u32,
    /// Set while the source is reported silent: the alert's threshold.
    pub silent: Option<i64>,
    /// The newest event heard, as evidence (none for a source restored
    /// from a snapshot and not heard since).
    pub evidence: Option<E>,
    /// Restored from a snapshot and not heard or ticked since: the time
    /// Vigil itself was down is neither a gap to learn nor a silence.
    pub resumed: bool,
}

/// What is persisted of one source: its learnt gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSource {
    /// Newest arrival heard (ms).
    pub last: i64,
    /// Moving mean of the gaps (ms).
    pub mean_gap: f64,
    /// Longest gap lately (ms).
    pub max_gap: f64,
    /// Gaps observed.
    pub gaps: u32,
    /// The threshold of a silence already reported.
    pub silent: Option<i64>,
}

/// Every source's gap statistics, to persist.
pub type Saved = HashMap<String, SavedSource>;

impl<E> Source<E> {
    /// Silence longer than this (ms) is alerted, once armed.
    pub fn threshold(&self, c: &SourceSilent) -> i64 {
        let t = (c.factor * self.mean_gap)
            .max(c.max_gap_factor * self.max_gap)
            .max(c.floor_secs as f64 * 1000.0);
        t.min(i64::MAX as f64 / 2.0) as i64
    }
}

/// A source heard again after it was reported silent.
#[derive(Debug)]
pub(crate) struct Recovered<E> {
    /// When it was last heard before the silence.
    pub last: i64,
    /// The silence threshold it had crossed, ms.
    pub threshold: i64,
    /// The source's previous evidence, if known.
    pub before: Option<E>,
}

/// Every tracked source, at most `max_sources`.
#[derive(Debug)]
pub(crate) struct Silence<E> {
    /// State per source name.
    pub map: FastMap<Box<str>, Source<E>>,
    /// Sources evicted for `max_sources`.
    pub evictions: u64,
    /// Events older than their source's newest (not learnt from).
    pub late: u64,
}

impl<E: Clone> Silence<E> {
    /// The gap statistics, to persist.
    pub fn saved(&self) -> Saved {
        self.map
            .iter()
            .map(|(k, s)| {
                (
                    k.to_string(),
                    SavedSource {
                        last: s.last,
                        mean_gap: s.mean_gap,
                        max_gap: s.max_gap,
                        gaps: s.gaps,
                        silent: s.silent,
                    },
                )
            })
            .collect()
    }

    /// Whether saved statistics are usable under `c`.
    pub fn check(saved: &Saved, c: &SourceSilent) -> Result<(), &'static str> {
        if saved.len() > c.max_sources {
            return Err("source_silent.max_sources");
        }
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !saved.values().all(|s| ok(s.mean_gap) && ok(s.max_gap)) {
            return Err("source_silent gaps (not finite or negative)");
        }
        Ok(())
    }

    /// Replaces the sources with saved ones.
    pub fn restore(&mut self, saved: Saved) {
        self.map = saved
            .into_iter()
            .map(|(k, s)| {
                (
                    k.into_boxed_str(),
                    Source {
                        last: s.last,
                        mean_gap: s.mean_gap,
                        max_gap: s.max_gap,
                        gaps: s.gaps,
                        silent: s.silent,
                        evidence: None,
                        resumed: true,
                    },
                )
            })
            .collect();
    }

    /// No source known yet.
    pub fn new() -> Self {
        Silence {
            map: FastMap::default(),
            evictions: 0,
            late: 0,
        }
    }

    /// Records an event of `source` at `t`; returns the recovery when the
    /// source had been reported silent.
    pub fn heard(&mut self, source: &str, t: i64, e: E, c: &SourceSilent) -> Option<Recovered<E>> {
        let Some(s) = self.map.get_mut(source) else {
            if self.map.len() >= c.max_sources.max(1) {
                self.evict();
            }
            self.map.insert(
                Box::from(source),
                Source {
                    last: t,
                    mean_gap: 0.0,
                    max_gap: 0.0,
                    gaps: 0,
                    silent: None,
                    evidence: Some(e),
                    resumed: false,
                },
            );
            return None;
        };
        if t < s.last {
            self.late += 1;
            return None;
        }
        let gap = (t - s.last) as f64;
        let recovered = s.silent.take().map(|threshold| Recovered {
            last: s.last,
            threshold,
            before: s.evidence.clone(),
        });
        // The silence itself is not learnt: it would raise the threshold
        // of the next outage; nor is the time Vigil was down.
        if recovered.is_none() && !std::mem::take(&mut s.resumed) {
            s.mean_gap = if s.gaps == 0 {
                gap
            } else {
                c.alpha * gap + (1.0 - c.alpha) * s.mean_gap
            };
            let decay = (-(gap / MAX_GAP_HALF_LIFE_MS) * std::f64::consts::LN_2).exp();
            s.max_gap = (s.max_gap * decay).max(gap);
            s.gaps = s.gaps.saturating_add(1);
        }
        s.last = t;
        s.evidence = Some(e);
        recovered
    }

    /// Sources armed and silent at `now`, marked as reported: (name,
    /// last heard, threshold, gaps, mean gap, evidence).
    pub fn tick(&mut self, now: i64, c: &SourceSilent) -> Vec<(Box<str>, Source<E>)> {
        let mut out = Vec::new();
        for (k, s) in &mut self.map {
            if s.resumed {
                // Restored: its silence is counted from Vigil's return.
                s.resumed = false;
                s.last = s.last.max(now);
                continue;
            }
            if s.silent.is_some() || s.gaps < c.min_observations {
                continue;
            }
            let th = s.threshold(c);
            if now.saturating_sub(s.last) > th {
                s.silent = Some(th);
                out.push((k.clone(), s.clone()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drops the least recently heard eighth of the sources.
    fn evict(&mut self) {
        let n = (self.map.len() / 8).max(1);
        let mut times: Vec<i64> = self.map.values().map(|s| s.last).collect();
        let (_, cut, _) = times.select_nth_unstable(n - 1);
        let cut = *cut;
        let mut left = n;
        self.map.retain(|_, s| {
            if left > 0 && s.last <= cut {
                left -= 1;
                false
            } else {
                true
            }
        });
        self.evictions += (n - left) as u64;
    }
}
