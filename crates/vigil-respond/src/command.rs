//! Running a `command` action: the program directly (never through a
//! shell), in its own process group, with an empty environment apart from
//! a fixed `PATH`, stdin closed, stdout and stderr captured up to a cap,
//! and the whole group killed when the timeout passes.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of stdout and of stderr kept.
pub const OUTPUT_CAP: usize = 16 * 1024;

/// How often a running child is looked at.
const POLL: Duration = Duration::from_millis(10);

/// What a finished (or killed) command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Captured stdout (lossy UTF-8, capped).
    pub stdout: String,
    /// Captured stderr (lossy UTF-8, capped).
    pub stderr: String,
    /// Whether output beyond [`OUTPUT_CAP`] was dropped.
    pub truncated: bool,
}

impl CommandOutput {
    /// Exit code 0, in time.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// How long captured output may keep flowing after the child ended: a
/// grandchild that left the process group could hold the pipes open forever.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

type Captured = std::sync::mpsc::Receiver<(Vec<u8>, bool)>;

/// Reads `r` to the end, keeping the first [`OUTPUT_CAP`] bytes; draining
/// the rest keeps the child from blocking on a full pipe.
fn capture(mut r: impl Read + Send + 'static) -> Captured {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        let mut truncated = false;
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    truncated |= n > room;
                }
            }
        }
        let _ = tx.send((kept, truncated));
    });
    rx
}

/// Runs `program` with `args` (each one argv element), killing it and its
/// process group after `timeout`.
pub fn run(program: &Path, args: &[String], timeout: Duration) -> Result<CommandOutput, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let out = child.stdout.take().map(capture);
    let err = child.stderr.take().map(capture);
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(format!("waiting for {}: {e}", program.display()));
            }
        }
    };
    // The group is gone or finished, so the pipes normally close at once;
    // output still held open after the grace period is given up on.
    let grace = Instant::now() + DRAIN_GRACE;
    let join = |rx: Option<Captured>| {
        rx.and_then(|rx| {
            rx.recv_timeout(grace.saturating_duration_since(Instant::now()))
                .ok()
        })
        .unwrap_or_default()
    };
    let (o, ot) = join(out);
    let (e, et) = join(err);
    Ok(CommandOutput {
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: String::from_utf8_lossy(&o).into_owned(),
        stderr: String::from_utf8_lossy(&e).into_owned(),
        truncated: ot || et,
    })
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // The child leads its own group (process_group(0)); killing the
        // group also ends whatever it started.
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group only.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(p: &str) -> bool {
        let ok = Path::new(p).exists();
        if !ok {
            println!("skipped: {p} is not present on this machine");
        }
        ok
    }

    #[test]
    fn timeout_kills_a_sleeping_child() {
        if !have("/bin/sleep") {
            return;
        }
        let started = Instant::now();
        let out = run(
            Path::new("/bin/sleep"),
            &["30".into()],
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(out.timed_out, "{out:?}");
        assert_eq!(out.code, None, "killed by a signal, not exited");
        assert!(!out.success());
        // Bounded by the 30 s sleep, not a timing assertion on the kill itself.
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn output_is_captured_and_args_stay_whole() {
        if !have("/bin/echo") {
            return;
        }
        let out = run(
            Path::new("/bin/echo"),
            &["one arg; rm -rf /".into(), "$(id)".into()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.success(), "{out:?}");
        // No shell: the metacharacters arrive as text.
        assert_eq!(out.stdout, "one arg; rm -rf / $(id)\n");
        assert!(!out.truncated);
    }

    #[test]
    fn long_output_is_capped() {
        if !have("/usr/bin/head") || !have("/dev/zero") {
            return;
        }
        let out = run(
            Path::new("/usr/bin/head"),
            &["-c".into(), "100000".into(), "/dev/zero".into()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout.len(), OUTPUT_CAP);
        assert!(out.truncated);
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let e = run(
            Path::new("/nonexistent/vigil-tool"),
            &[],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.contains("cannot start /nonexistent/vigil-tool"), "{e}");
    }
}
