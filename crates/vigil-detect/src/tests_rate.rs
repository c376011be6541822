//! Tests of the seasonal rate profiles.

use super::*;
use crate::{Config, Detector, Detectors, Observation};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Monday 2025-01-06 00:00 UTC.
const MONDAY: i64 = 1_736_121_600_000;

/// The diurnal curve of `vigil simulate`: quiet nights, a morning ramp.
const HOURLY: [f64; 24] = [
    0.18, 0.15, 0.13, 0.12, 0.12, 0.15, 0.25, 0.45, 0.75, 0.95, 1.0, 1.0, 0.9, 0.95, 1.0, 0.98,
    0.9, 0.75, 0.55, 0.45, 0.38, 0.32, 0.26, 0.21,
];

fn cfg() -> Config {
    let mut c = Config::default();
    c.rate.by_user = false;
    c.rate.by_source = false;
    c.rate.by_category = false;
    c
}

fn host_obs(host: &str, t: i64) -> Observation {
    let mut keys = RateKeys::default();
    keys.keys[1] = Some(Box::from(host));
    Observation {
        time: t,
        rate: Some(keys),
        ..Observation::default()
    }
}

/// A small deterministic generator for count noise.
struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Feeds `web01` at `per_bucket × HOURLY[hour]` (± Poisson-like noise)
/// from `from` for `len`, with `scale(t)` applied, and a steady `db01`
/// so that the fleet's clock keeps moving; returns the alerts.
fn feed(
    d: &mut Detectors<u64>,
    from: i64,
    len: i64,
    per_bucket: f64,
    scale: impl Fn(i64) -> f64,
    rng: &mut Lcg,
) -> Vec<crate::Alert<u64>> {
    let b = 5 * MIN;
    let mut out = Vec::new();
    let mut t = from;
    let mut seq = 0;
    while t < from + len {
        let (_, hour) = slots(t);
        let lambda = per_bucket * HOURLY[hour] * scale(t);
        let noise = (rng.unit() * 2.0 - 1.0) * 1.5 * lambda.sqrt();
        let n = (lambda + noise).round().max(0.0) as i64;
        for i in 0..n {
            seq += 1;
            out.extend(d.feed(&host_obs("web01", t + i * b / (n + 1)), seq));
        }
        for i in 0..10 {
            seq += 1;
            out.extend(d.feed(&host_obs("db01", t + i * b / 10 + 7), seq));
        }
        t += b;
    }
    out
}

#[test]
fn a_diurnal_series_does_not_alert() {
    let mut d = Detectors::new(cfg());
    let mut rng = Lcg(7);
    // Two weeks of a weekday curve with weekends at 35 %: the morning
    // ramps, the nights and the weekends are all ordinary.
    let weekend = |t: i64| {
        let day = (t - MONDAY).div_euclid(DAY) % 7;
        if day >= 5 {
            0.35
        } else {
            1.0
        }
    };
    let alerts = feed(&mut d, MONDAY, 14 * DAY, 200.0, weekend, &mut rng);
    let spurious: Vec<String> = alerts.iter().map(|a| a.summary.clone()).collect();
    assert!(spurious.is_empty(), "{spurious:#?}");
    assert_eq!(d.stats(Detector::RateSpike).alerts, 0);
}

#[test]
fn a_tenfold_spike_and_a_drop_to_zero_alert_once_each() {
    let mut d = Detectors::new(cfg());
    let mut rng = Lcg(11);
    let quiet = feed(&mut d, MONDAY, 2 * DAY, 200.0, |_| 1.0, &mut rng);
    assert!(quiet.is_empty());
    // Wednesday 10:00–10:30: ten times the usual.
    let day3 = MONDAY + 2 * DAY;
    let spike = |t: i64| {
        if (day3 + 10 * HOUR..day3 + 10 * HOUR + 30 * MIN).contains(&t) {
            10.0
        } else {
            1.0
        }
    };
    let alerts = feed(&mut d, day3, 12 * HOUR, 200.0, spike, &mut rng);
    assert_eq!(alerts.len(), 1, "one alert per episode: {alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.detector, Detector::RateSpike);
    assert_eq!(a.entity, vec![("host.name", "web01".to_string())]);
    assert_eq!(a.first, day3 + 10 * HOUR);
    assert_eq!(a.counts["basis"], "hour_of_day");
    assert_eq!(a.counts["slot"], "Wed 10:00 UTC");
    // Called at the event that crossed the bound, while the bucket was open:
    // the count so far is past every bar, and the bucket's close (ten times
    // the usual) does not alert again.
    assert_eq!(a.counts["judged"], "bucket_open");
    assert!(a.last < day3 + 10 * HOUR + 5 * MIN, "{} ", a.last);
    assert!(
        a.summary.contains("events so far in the 300s"),
        "{}",
        a.summary
    );
    let observed = a.counts["observed"].as_u64().unwrap() as f64;
    let expected = a.counts["expected"].as_f64().unwrap();
    assert!(observed >= 4.0 * expected, "{observed} vs {expected}");
    assert!(
        observed < 8.0 * expected,
        "not the whole bucket: {observed} vs {expected}"
    );
    assert!(a.counts["score"].as_f64().unwrap() >= 6.0);
    assert_eq!(a.evidence.len(), 20, "a sample of the bucket's events");
    assert!(a.evidence_truncated);

    // Thursday 11:00–12:00: web01 falls silent while db01 goes on.
    let day4 = MONDAY + 3 * DAY;
    let drop = |t: i64| {
        if (day4 + 11 * HOUR..day4 + 12 * HOUR).contains(&t) {
            0.0
        } else {
            1.0
        }
    };
    let alerts = feed(&mut d, day4, 14 * HOUR, 200.0, drop, &mut rng);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.detector, Detector::RateDrop);
    assert_eq!(a.counts["observed"], 0);
    assert_eq!(a.first, day4 + 11 * HOUR);
    // Nothing arrived in the bucket: the evidence is the last event heard.
    assert_eq!(a.evidence.len(), 1);
    assert!(
        a.summary.contains("host web01 sent 0 events"),
        "{}",
        a.summary
    );
}

#[test]
fn small_counts_never_alert() {
    let mut c = cfg();
    c.rate.learning_secs = 0;
    let mut d = Detectors::new(c);
    let mut rng = Lcg(3);
    // About 2 per bucket, then 20: ten times, but below min_change.
    feed(&mut d, MONDAY, DAY, 2.0, |_| 1.0, &mut rng);
    let alerts = feed(&mut d, MONDAY + DAY, HOUR, 2.0, |_| 10.0, &mut rng);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn slots_fall_back_from_week_to_day_to_recent() {
    let c = Config::default().rate;
    let mut p = Profile::new(MONDAY);
    let (week, day) = slots(MONDAY + 9 * HOUR);
    assert_eq!((week, day), (9, 9));
    assert_eq!(slots(MONDAY + 6 * DAY + 23 * HOUR), (167, 23));
    // Nothing learnt: no verdict at all.
    assert!(judge(&p, week, day, 10.0, &c).is_none());
    for _ in 0..6 {
        p.recent.learn(100.0, RECENT_ALPHA);
    }
    let j = judge(&p, week, day, 100.0, &c).unwrap();
    assert_eq!(j.basis, Basis::Recent);
    for _ in 0..5 {
        p.day[day].learn(40.0, SLOT_ALPHA);
    }
    assert_eq!(
        judge(&p, week, day, 100.0, &c).unwrap().basis,
        Basis::Recent
    );
    p.day[day].learn(40.0, SLOT_ALPHA);
    let j = judge(&p, week, day, 100.0, &c).unwrap();
    assert_eq!((j.basis, j.n), (Basis::DayHour, 6));
    assert!((j.expected - 40.0).abs() < 1e-3);
    for _ in 0..6 {
        p.week[week].learn(300.0, SLOT_ALPHA);
    }
    let j = judge(&p, week, day, 100.0, &c).unwrap();
    assert_eq!(j.basis, Basis::WeekHour);
    assert!((j.expected - 300.0).abs() < 1e-3);
    // Spread: the learnt variance with a Poisson floor.
    assert!((j.spread - 300f64.sqrt()).abs() < 1e-3);
}

#[test]
fn entities_are_capped_and_the_least_recent_evicted() {
    let mut c = cfg();
    c.rate.max_entities = 8;
    let mut d: Detectors<u64> = Detectors::new(c);
    for i in 0..100 {
        d.feed(&host_obs(&format!("h{i}"), MONDAY + i * 1000), i as u64);
    }
    assert!(d.tracked_keys() <= 8, "{}", d.tracked_keys());
    assert!(d.stats(Detector::RateSpike).evictions >= 92);
    // The newest is kept.
    let snap: serde_json::Value = serde_json::from_slice(&d.snapshot().unwrap()).unwrap();
    assert!(snap["rates"]["profiles"]["host"]["h99"].is_object());
    assert!(snap["rates"]["profiles"]["host"]["h0"].is_null());
}

#[test]
fn profiles_survive_a_snapshot_and_a_damaged_one_is_refused() {
    let mut d = Detectors::new(cfg());
    let mut rng = Lcg(5);
    feed(&mut d, MONDAY, 2 * DAY, 200.0, |_| 1.0, &mut rng);
    let snap = d.snapshot().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&snap).unwrap();
    assert_eq!(v["version"], 2);
    // Slots are written sparse: [hour, n, mean, variance].
    let day = v["rates"]["profiles"]["host"]["web01"]["day"]
        .as_array()
        .unwrap();
    assert_eq!(day.len(), 24);
    assert_eq!(day[10][0], 10);
    assert_eq!(day[10][1], 24);

    // Restored, the profile judges at once: a spike at 01:00 on the third
    // day is caught by the hour's slot, without a new learning period.
    let mut e = Detectors::new(cfg());
    e.restore(&snap).unwrap();
    let day3 = MONDAY + 2 * DAY;
    let spike = |t: i64| {
        if (day3 + HOUR..day3 + HOUR + 30 * MIN).contains(&t) {
            10.0
        } else {
            1.0
        }
    };
    let alerts = feed(&mut e, day3, 4 * HOUR, 200.0, spike, &mut rng);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].counts["basis"], "hour_of_day");
    // Without it, the restarted detectors are learning again and miss it.
    let mut f = Detectors::new(cfg());
    assert!(feed(&mut f, day3, 4 * HOUR, 200.0, spike, &mut rng).is_empty());

    // A slot beyond the day, or a value that is not a finite count,
    // refuses the snapshot whole.
    let mut bad = v.clone();
    bad["rates"]["profiles"]["host"]["web01"]["day"][0][0] = serde_json::json!(24);
    let err = e.restore(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
    assert!(err.to_string().contains("slot 24 beyond 24"), "{err}");
    let mut bad = v.clone();
    bad["rates"]["profiles"]["host"]["web01"]["recent"][1] = serde_json::json!(-5.0);
    assert!(e.restore(&serde_json::to_vec(&bad).unwrap()).is_err());
    let mut c = cfg();
    c.rate.max_entities = 1;
    let mut g: Detectors<u64> = Detectors::new(c);
    assert!(matches!(
        g.restore(&snap),
        Err(crate::SnapshotError::Caps("rate.max_entities"))
    ));
    // A version 1 snapshot (first-seen baselines only) is still read.
    let mut old = v.clone();
    let o = old.as_object_mut().unwrap();
    o.remove("rates");
    o.remove("silence");
    o.insert("version".into(), serde_json::json!(1));
    g.restore(&serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(g.tracked_keys(), 0);
}

#[test]
fn rate_settings_are_validated() {
    let mut c = Config::default();
    c.rate.bucket_secs = 420;
    assert_eq!(c.validate().unwrap_err().key, "rate.bucket_secs");
    let mut c = Config::default();
    c.rate.drop_factor = 1.0;
    assert_eq!(c.validate().unwrap_err().key, "rate.drop_factor");
    let mut c = Config::default();
    c.rate.max_entities = 0;
    assert_eq!(c.validate().unwrap_err().key, "rate.max_entities");
    assert!(Config::default().validate().is_ok());
}

#[test]
fn rate_keys_are_read_from_events() {
    let c = Config::default();
    let v = serde_json::json!({"host":{"name":"app01"},"user":{"name":"alice"},
        "event":{"category":["authentication"]},"vigil":{"source":"10.0.0.5"}});
    let o = crate::observe(v.as_object().unwrap(), MONDAY, &c).unwrap();
    let k = o.rate.unwrap().keys;
    assert_eq!(k[0].as_deref(), Some("10.0.0.5"));
    assert_eq!(k[1].as_deref(), Some("app01"));
    assert_eq!(k[2].as_deref(), Some("alice"));
    assert_eq!(k[3].as_deref(), Some("authentication"));
    let w = serde_json::json!({"EventID":4624,"Computer":"WS-0001","TargetUserName":"WS-0001$"});
    let o = crate::observe(w.as_object().unwrap(), MONDAY, &c).unwrap();
    let k = o.rate.unwrap().keys;
    assert_eq!(k[1].as_deref(), Some("WS-0001"));
    assert_eq!(k[2], None, "machine accounts are not users");
}

#[test]
fn an_open_bucket_alerts_at_exactly_the_count_that_crosses_the_bound() {
    let mut d = Detectors::new(cfg());
    let mut rng = Lcg(5);
    assert!(feed(&mut d, MONDAY, 2 * DAY, 200.0, |_| 1.0, &mut rng).is_empty());
    // The fleet's clock is at Wednesday 00:00; move it to 10:00 quietly.
    let day3 = MONDAY + 2 * DAY;
    assert!(feed(&mut d, day3, 10 * HOUR, 200.0, |_| 1.0, &mut rng).is_empty());
    let start = day3 + 10 * HOUR;
    let c = d.cfg.rate;
    let (week, day) = slots(start);
    let profile = d.rates.maps[1]["web01"].profile.clone();
    // The first count the profile calls a spike, found independently.
    let bound = (1..100_000u32)
        .find(|x| judge(&profile, week, day, f64::from(*x), &c).is_some_and(|j| j.spike))
        .expect("a learnt profile has a bound");
    let mut seq = 1_000_000;
    for x in 1..=bound + 50 {
        seq += 1;
        // All inside the first minute of the bucket.
        let got = d.feed(&host_obs("web01", start + i64::from(x)), seq);
        if x < bound {
            assert!(got.is_empty(), "count {x} is below the bound {bound}");
        } else if x == bound {
            assert_eq!(got.len(), 1, "count {x} reaches the bound");
            assert_eq!(got[0].counts["observed"], bound);
            assert_eq!(got[0].last, start + i64::from(x));
        } else {
            assert!(got.is_empty(), "one alert per episode, count {x}");
        }
    }
    // The bucket closes as a spike without a second alert.
    let after = feed(&mut d, start + 5 * MIN, HOUR, 200.0, |_| 1.0, &mut rng);
    assert!(after.is_empty(), "{after:#?}");
}

/// Learns two quiet days and brings the clock to Wednesday 10:00, the start
/// of the bucket the tests work in.
fn learnt(seed: u64) -> (Detectors<u64>, Lcg, i64) {
    let mut d = Detectors::new(cfg());
    let mut rng = Lcg(seed);
    assert!(feed(
        &mut d,
        MONDAY,
        2 * DAY + 10 * HOUR,
        200.0,
        |_| 1.0,
        &mut rng
    )
    .is_empty());
    (d, rng, MONDAY + 2 * DAY + 10 * HOUR)
}

#[test]
fn a_spike_split_by_a_restart_is_still_counted_whole() {
    let (mut d, mut rng, start) = learnt(13);
    let c = d.cfg.rate;
    let (week, day) = slots(start);
    let profile = d.rates.maps[1]["web01"].profile.clone();
    let bound = (1..100_000u32)
        .find(|x| judge(&profile, week, day, f64::from(*x), &c).is_some_and(|j| j.spike))
        .unwrap();
    // Two thirds of the bound before the restart, the rest after it.
    let before = bound * 2 / 3;
    let mut seq = 1_000_000;
    for x in 1..=before {
        seq += 1;
        assert!(d
            .feed(&host_obs("web01", start + i64::from(x)), seq)
            .is_empty());
    }
    let snap = d.snapshot().unwrap();
    let mut d2 = Detectors::new(cfg());
    d2.restore(&snap).unwrap();
    let mut alerts = Vec::new();
    for x in before + 1..=bound {
        seq += 1;
        alerts.extend(d2.feed(&host_obs("web01", start + i64::from(x)), seq));
    }
    assert_eq!(alerts.len(), 1, "the restored count reaches the bound");
    assert_eq!(alerts[0].counts["observed"], bound);
    // Without the open counts the same events stay far below the bound.
    let mut d3 = Detectors::new(cfg());
    d3.restore(&snap).unwrap();
    d3.rates.restore(d.rates.saved(&c).without_open(), &c);
    for x in before + 1..=bound {
        seq += 1;
        assert!(d3
            .feed(&host_obs("web01", start + i64::from(x)), seq)
            .is_empty());
    }
    // And the bucket's close after the restart does not alert again.
    let after = feed(&mut d2, start + 5 * MIN, HOUR, 200.0, |_| 1.0, &mut rng);
    assert!(after.is_empty(), "{after:#?}");
}

#[test]
fn a_bucket_cut_short_by_a_restart_is_not_a_drop() {
    let (mut d, mut rng, start) = learnt(17);
    // A normal first minute of the bucket, then Vigil stops; it comes back
    // as the next bucket starts, and web01's events of the gap are lost.
    let mut seq = 2_000_000;
    for x in 0..10 {
        seq += 1;
        assert!(d.feed(&host_obs("web01", start + x * 1000), seq).is_empty());
        seq += 1;
        assert!(d
            .feed(&host_obs("db01", start + x * 1000 + 7), seq)
            .is_empty());
    }
    let snap = d.snapshot().unwrap();
    let mut d2 = Detectors::new(cfg());
    d2.restore(&snap).unwrap();
    let alerts = feed(&mut d2, start + 5 * MIN, 2 * HOUR, 200.0, |_| 1.0, &mut rng);
    assert!(alerts.is_empty(), "{alerts:#?}");
    // The same cut without the restart is a drop: the restart is what makes
    // the difference.
    let (mut d, mut rng, start) = learnt(17);
    for x in 0..10 {
        seq += 1;
        d.feed(&host_obs("web01", start + x * 1000), seq);
        seq += 1;
        d.feed(&host_obs("db01", start + x * 1000 + 7), seq);
    }
    let alerts = feed(&mut d, start + 5 * MIN, 2 * HOUR, 200.0, |_| 1.0, &mut rng);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].detector, Detector::RateDrop);
}

#[test]
fn open_buckets_of_another_length_are_not_restored() {
    let (mut d, _, start) = learnt(19);
    let mut seq = 3_000_000;
    for x in 0..5 {
        seq += 1;
        d.feed(&host_obs("web01", start + x), seq);
    }
    let saved = d.rates.saved(&d.cfg.rate);
    assert!(saved.open.is_some());
    let mut c = d.cfg.rate;
    c.bucket_secs = 600;
    let mut r: Rates<u64> = Rates::new();
    r.restore(saved, &c);
    assert_eq!(r.bucket, None);
    assert!(r.maps[1].values().all(|e| e.live.count == [0, 0]));
}
