//! Response metrics per severity, computed from stored incidents:
//!
//! * **MTTD** (time to detect): from the event time of the earliest
//!   evidence behind an incident's alerts to its detection (the first
//!   sighting of its earliest alert);
//! * **MTTA** (time to acknowledge): from the incident's creation to when it
//!   first left `new`;
//! * **MTTR** (time to resolve): from creation to when it became `resolved`
//!   or `false_positive` (incidents reopened and still open do not count).
//!
//! Each is given as count, mean and median, in seconds.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_alert::model::{Level, Millis};

/// One incident's times (ms since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Current severity.
    pub severity: Level,
    /// Opened.
    pub created_at: Millis,
    /// First sighting of its earliest alert.
    pub detected_at: Millis,
    /// Event time of its earliest evidence, when known.
    pub evidence_at: Option<Millis>,
    /// First left `new`.
    pub acknowledged_at: Option<Millis>,
    /// Became `resolved` or `false_positive`.
    pub resolved_at: Option<Millis>,
}

/// Count, mean and median of durations, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stat {
    /// How many incidents have this duration.
    pub count: u64,
    /// Mean, seconds (absent without samples).
    pub mean_secs: Option<f64>,
    /// Median, seconds (the mean of the middle two for an even count).
    pub median_secs: Option<f64>,
}

impl Stat {
    /// The statistics of durations in ms (negative ones count as zero:
    /// clocks of sources disagree).
    pub fn of(mut ms: Vec<Millis>) -> Stat {
        if ms.is_empty() {
            return Stat::default();
        }
        for m in &mut ms {
            *m = (*m).max(0);
        }
        ms.sort_unstable();
        let n = ms.len();
        let sum: f64 = ms.iter().map(|&m| m as f64).sum();
        let median = if n % 2 == 1 {
            ms[n / 2] as f64
        } else {
            (ms[n / 2 - 1] as f64 + ms[n / 2] as f64) / 2.0
        };
        Stat {
            count: n as u64,
            mean_secs: Some(sum / n as f64 / 1000.0),
            median_secs: Some(median / 1000.0),
        }
    }
}

/// The metrics of one severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeverityMetrics {
    /// Incidents of this severity.
    pub incidents: u64,
    /// Time to detect.
    pub mttd: Stat,
    /// Time to acknowledge.
    pub mtta: Stat,
    /// Time to resolve.
    pub mttr: Stat,
}

/// Metrics per severity (only severities with incidents) and overall.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Per severity name.
    pub by_severity: BTreeMap<String, SeverityMetrics>,
    /// All incidents together.
    pub all: SeverityMetrics,
}

fn of(samples: &[&Sample]) -> SeverityMetrics {
    let pick = |f: &dyn Fn(&Sample) -> Option<Millis>| -> Stat {
        Stat::of(samples.iter().filter_map(|s| f(s)).collect())
    };
    SeverityMetrics {
        incidents: samples.len() as u64,
        mttd: pick(&|s| s.evidence_at.map(|e| s.detected_at - e)),
        mtta: pick(&|s| s.acknowledged_at.map(|a| a - s.created_at)),
        mttr: pick(&|s| s.resolved_at.map(|r| r - s.created_at)),
    }
}

impl Metrics {
    /// Computes the metrics of `samples`.
    pub fn compute(samples: &[Sample]) -> Metrics {
        let mut by: BTreeMap<Level, Vec<&Sample>> = BTreeMap::new();
        for s in samples {
            by.entry(s.severity).or_default().push(s);
        }
        Metrics {
            by_severity: by
                .iter()
                .map(|(l, v)| (l.as_str().to_string(), of(v)))
                .collect(),
            all: of(&samples.iter().collect::<Vec<_>>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(
        severity: Level,
        evidence: Option<Millis>,
        ack: Option<Millis>,
        res: Option<Millis>,
    ) -> Sample {
        Sample {
            severity,
            created_at: 100_000,
            detected_at: 90_000,
            evidence_at: evidence,
            acknowledged_at: ack.map(|a| 100_000 + a),
            resolved_at: res.map(|r| 100_000 + r),
        }
    }

    #[test]
    fn known_numbers() {
        let samples = [
            // high: acknowledged after 60 s, 120 s and 300 s; resolved after 600 s and 1200 s.
            s(Level::High, Some(30_000), Some(60_000), Some(600_000)),
            s(Level::High, Some(80_000), Some(120_000), Some(1_200_000)),
            s(Level::High, None, Some(300_000), None),
            // critical: one, never acknowledged.
            s(Level::Critical, None, None, None),
        ];
        let m = Metrics::compute(&samples);
        let high = &m.by_severity["high"];
        assert_eq!(high.incidents, 3);
        assert_eq!(high.mtta.count, 3);
        assert_eq!(high.mtta.mean_secs, Some(160.0));
        assert_eq!(high.mtta.median_secs, Some(120.0));
        assert_eq!(high.mttr.count, 2);
        assert_eq!(high.mttr.mean_secs, Some(900.0));
        assert_eq!(high.mttr.median_secs, Some(900.0));
        // Detection 90 s; evidence at 30 s and 80 s: 60 s and 10 s.
        assert_eq!(high.mttd.count, 2);
        assert_eq!(high.mttd.mean_secs, Some(35.0));
        let crit = &m.by_severity["critical"];
        assert_eq!(crit.incidents, 1);
        assert_eq!(crit.mtta, Stat::default());
        assert!(!m.by_severity.contains_key("low"));
        assert_eq!(m.all.incidents, 4);
        assert_eq!(m.all.mtta.count, 3);
    }

    #[test]
    fn odd_even_and_negative_durations() {
        assert_eq!(Stat::of(vec![3000, 1000, 2000]).median_secs, Some(2.0));
        assert_eq!(
            Stat::of(vec![4000, 1000, 2000, 3000]).median_secs,
            Some(2.5)
        );
        let neg = Stat::of(vec![-5000, 5000]);
        assert_eq!(neg.mean_secs, Some(2.5));
        assert_eq!(Stat::of(vec![]).count, 0);
    }
}
