//! The alerts of `vigil.rate_spike` and `vigil.rate_drop`.

use serde_json::json;

use crate::config::RateClock;
use crate::rate::{slot_name, Anomaly};
use crate::{counts, format_ms, Alert, Detector, Detectors, Observation};

/// Rounds to `d` decimals for display.
fn round(x: f64, d: i32) -> f64 {
    let f = 10f64.powi(d);
    (x * f).round() / f
}

impl<E: Clone> Detectors<E> {
    /// Counts the event for its entities; alerts on the buckets its
    /// arrival closes.
    pub(crate) fn rate(&mut self, obs: &Observation, ev: &E, out: &mut Vec<Alert<E>>) {
        let c = self.cfg.rate;
        let Some(keys) = &obs.rate else { return };
        if !c.enabled {
            return;
        }
        let at = match c.clock {
            RateClock::Arrival => obs.received.unwrap_or(obs.time),
            RateClock::Event => obs.time,
        };
        for a in self.rates.count(keys, at, ev, &c, self.cfg.max_evidence) {
            out.push(Self::rate_alert(a, c.bucket_secs));
        }
    }

    fn rate_alert(a: Anomaly<E>, bucket_secs: u64) -> Alert<E> {
        let d = if a.spike {
            Detector::RateSpike
        } else {
            Detector::RateDrop
        };
        let slot = slot_name(a.bucket);
        let word = a.kind.word();
        let so_far = if a.early.is_some() { " so far" } else { "" };
        let summary = format!(
            "{word} {} sent {} events{so_far} in the {bucket_secs}s from {} (expected {:.1} ± {:.1} for {slot} by {}, score {:.1})",
            a.entity,
            a.observed,
            format_ms(a.bucket),
            a.expected,
            a.spread,
            a.basis.as_str(),
            a.score
        );
        // An early spike's evidence ends at the event that crossed the bound.
        let last = a
            .early
            .unwrap_or(a.bucket + (bucket_secs as i64) * 1000 - 1);
        Alert::new(d, summary)
            .entity(vec![(a.kind.field(), a.entity.to_string())])
            .counts(counts(&[
                ("kind", json!(word)),
                ("slot", json!(slot)),
                ("basis", json!(a.basis.as_str())),
                ("observed", json!(a.observed)),
                ("expected", json!(round(a.expected, 1))),
                ("spread", json!(round(a.spread, 1))),
                ("score", json!(round(a.score, 2))),
                ("slot_observations", json!(a.slot_observations)),
                ("bucket_secs", json!(bucket_secs)),
                (
                    "judged",
                    json!(if a.early.is_some() {
                        "bucket_open"
                    } else {
                        "bucket_closed"
                    }),
                ),
            ]))
            .window(bucket_secs)
            .span(a.bucket, last)
            .evidence(a.evidence, a.truncated)
    }
}
