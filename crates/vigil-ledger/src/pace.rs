//! Keeps the idle compression thread out of an ingest burst.
//!
//! `SCHED_IDLE` alone is not enough: a busy pipeline still leaves gaps of
//! microseconds between hand-offs, the idle thread fills them, and its level-9
//! work (megabytes of match tables) cost a burst 5–10 % of its rate through
//! the caches and the shared core. So between records the thread also asks
//! whether the machine had half a core to spare over the last fifth of a
//! second (idle time plus the thread's own), and sleeps while it did not.

use std::time::{Duration, Instant};

/// Shortest window over which spare CPU is judged (`/proc/stat` counts in
/// 10 ms ticks).
const WINDOW: Duration = Duration::from_millis(200);
/// How long a thread that found no spare CPU sleeps before looking again.
const BACKOFF: Duration = Duration::from_millis(250);
/// Spare CPU (in cores) below which the thread waits.
const MIN_SPARE_CORES: f64 = 0.5;
/// Records between two looks at the clock.
const RECORDS_PER_LOOK: u32 = 256;

/// CPU counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// Idle and iowait time of all CPUs, seconds.
    idle: f64,
    /// This thread's CPU time, seconds.
    own: f64,
}

/// The spare-CPU gate of one thread.
#[derive(Debug)]
pub(crate) struct Pacer {
    last: Option<Sample>,
    records: u32,
    source: fn() -> Option<Sample>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            last: None,
            records: 0,
            source: sample,
        }
    }
}

impl Pacer {
    /// Called per record: every [`RECORDS_PER_LOOK`] records, once a window
    /// has passed, judges the window and sleeps while the machine has no
    /// spare CPU. Returns early when `stop` says so. Where the counters
    /// cannot be read, never waits.
    pub(crate) fn step(&mut self, stop: &dyn Fn() -> bool) {
        self.records += 1;
        if self.records < RECORDS_PER_LOOK {
            return;
        }
        self.records = 0;
        let Some(prev) = self.last else {
            self.last = (self.source)();
            return;
        };
        if prev.at.elapsed() < WINDOW {
            return;
        }
        let mut prev = prev;
        loop {
            let Some(now) = (self.source)() else {
                self.last = None;
                return;
            };
            let secs = now.at.duration_since(prev.at).as_secs_f64();
            let spare = spare_cores(prev, now, secs);
            self.last = Some(now);
            if spare >= MIN_SPARE_CORES || stop() {
                return;
            }
            std::thread::sleep(BACKOFF);
            prev = now;
        }
    }
}

/// Cores' worth of CPU the thread could have had between two samples.
fn spare_cores(a: Sample, b: Sample, secs: f64) -> f64 {
    if secs <= 0.0 {
        return f64::INFINITY;
    }
    ((b.idle - a.idle) + (b.own - a.own)) / secs
}

fn sample() -> Option<Sample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    Some(Sample {
        at,
        idle: idle_secs(&stat)?,
        own: thread_cpu_secs()?,
    })
}

/// Idle plus iowait seconds of all CPUs from `/proc/stat`'s first line.
fn idle_secs(stat: &str) -> Option<f64> {
    let line = stat.lines().next()?;
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = f.map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| idle as f64 / hz as f64)
}

fn thread_cpu_secs() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_is_read_from_the_first_line() {
        // SAFETY: as above.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let stat = "cpu  100 0 50 400 20 0 0 0 0 0\ncpu0 50 0 25 200 10 0 0 0 0 0\n";
        assert_eq!(idle_secs(stat), Some(420.0 / hz));
        assert_eq!(idle_secs("intr 1 2 3\n"), None);
        assert_eq!(idle_secs("cpu  1 2 x\n"), None);
        assert!(
            sample().is_some(),
            "/proc/stat and the thread clock are readable here"
        );
    }

    #[test]
    fn spare_cpu_counts_idle_time_and_the_threads_own() {
        let t = Instant::now();
        let s = |idle, own, ms| Sample {
            at: t + Duration::from_millis(ms),
            idle,
            own,
        };
        // Over one second: 0.1 s idle and 0.2 s of our own: 0.3 cores spare.
        let spare = spare_cores(s(10.0, 1.0, 0), s(10.1, 1.2, 1000), 1.0);
        assert!((spare - 0.3).abs() < 1e-9, "{spare}");
        assert!(spare < MIN_SPARE_CORES);
        // A whole idle core is spare.
        assert!(spare_cores(s(10.0, 1.0, 0), s(11.0, 1.0, 1000), 1.0) >= MIN_SPARE_CORES);
    }

    use std::cell::Cell;

    thread_local! {
        /// Samples the fake source hands out: (idle seconds, own seconds).
        static SCRIPT: Cell<(u32, f64)> = const { Cell::new((0, 0.0)) };
    }

    /// A machine whose CPUs are never idle for the first `busy` samples,
    /// then fully idle; time passes a window per sample.
    fn scripted() -> Option<Sample> {
        SCRIPT.with(|c| {
            let (n, busy) = c.get();
            c.set((n + 1, busy));
            let base = Instant::now() - Duration::from_secs(3600);
            let idle = if f64::from(n) < busy {
                0.0
            } else {
                f64::from(n)
            };
            Some(Sample {
                at: base + WINDOW * n,
                idle,
                own: 0.0,
            })
        })
    }

    fn run_until_it_returns(busy: f64, stop: &dyn Fn() -> bool) -> (u32, Duration) {
        SCRIPT.with(|c| c.set((0, busy)));
        let mut p = Pacer {
            source: scripted,
            ..Pacer::default()
        };
        // The first look only takes a sample.
        for _ in 0..RECORDS_PER_LOOK {
            p.step(stop);
        }
        let started = Instant::now();
        for _ in 0..RECORDS_PER_LOOK {
            p.step(stop);
        }
        (SCRIPT.with(|c| c.get().0), started.elapsed())
    }

    #[test]
    fn a_busy_machine_makes_the_thread_wait_and_a_stop_ends_the_wait() {
        // Spare at once: one more sample, no sleep.
        let (samples, took) = run_until_it_returns(0.0, &|| false);
        assert_eq!(samples, 2);
        assert!(took < BACKOFF, "{took:?}");
        // Busy for the first three samples: two back-offs, then on.
        let (samples, took) = run_until_it_returns(3.0, &|| false);
        assert_eq!(samples, 4);
        assert!(took >= BACKOFF * 2, "{took:?}");
        // Busy for ever, but told to stop: returns without sleeping.
        let (samples, took) = run_until_it_returns(f64::INFINITY, &|| true);
        assert_eq!(samples, 2);
        assert!(took < BACKOFF, "{took:?}");
    }
}
