//! Audit records of offline commands (`vigil user …`, `vigil token …`).
//!
//! Those commands change `meta.db` directly, also while a server runs and
//! holds the ledger, so they cannot append to the ledger themselves. Each
//! change is written as one file in `DATA_DIR/audit-spool/` (mode 0600,
//! written to a temporary name, fsynced, then renamed, so a reader never
//! sees half a record); the server takes the files in at start and every
//! few seconds, stores them as audit events through the normal write path,
//! and deletes each file only after its event is durable. A crash between
//! the two stores the record again on the next pass: at least once, never
//! lost. A file that does not parse is moved aside to `rejected/`, logged
//! and counted, never deleted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use vigil_event::{fields, Event};
use vigil_ingest::InputKind;

use crate::audit::Record;
use crate::pipeline::{PipelineHandle, Prepared};

/// Largest spool file accepted; a record is a few hundred bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Most files taken in one pass; the rest wait for the next.
const MAX_PER_PASS: usize = 1024;

/// How often a running server looks at the spool.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// The spool directory of a data dir.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit-spool")
}

/// Who ran the command: the operating-system account.
fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 64 && !u.chars().any(char::is_control))
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid:{}", unsafe { libc::getuid() }))
}

/// Writes one record for the server to store, timestamped now, with the
/// operating-system user as `user.name` and `vigil.audit.origin: cli`.
pub fn write(data_dir: &Path, record: Record) -> std::io::Result<PathBuf> {
    let mut ev = record.user(format!("os:{}", os_user())).to_event();
    ev.set("vigil.audit.origin", "cli");
    ev.set_timestamp(SystemTime::now().into());
    let body = serde_json::to_vec(&ev.to_json())
        .map_err(|e| std::io::Error::other(format!("serializing an audit record: {e}")))?;
    let dir = dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    restrict(&dir, 0o700);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{nanos:032}-{:08x}.json", rand::random::<u32>());
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

fn restrict(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
}

/// Spool files ready to be taken, oldest first (names start with the time).
fn pending(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    out.truncate(MAX_PER_PASS);
    out
}

/// Reads a spool file into an audit event, or says why it cannot.
fn read(path: &Path) -> Result<Event, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{} bytes, more than {MAX_FILE_BYTES}", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let ev = Event::from_json(v, 32).map_err(|e| e.to_string())?;
    if ev.get_str(fields::EVENT_DATASET) != Some("vigil.audit") {
        return Err("not an audit record (event.dataset is not vigil.audit)".into());
    }
    Ok(ev)
}

fn reject(dir: &Path, path: &Path, why: &str) {
    metrics::counter!("vigil_audit_spool_rejected_total").increment(1);
    tracing::error!(file = %path.display(), reason = %vigil_event::sanitize::display(why), "audit spool file refused; moved to rejected/");
    let aside = dir.join("rejected");
    let _ = std::fs::create_dir_all(&aside);
    if let Some(name) = path.file_name() {
        if std::fs::rename(path, aside.join(name)).is_err() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Stores every pending spool file as an audit event and deletes it once
/// durable. Returns how many were stored.
pub async fn take(data_dir: &Path, pipeline: &PipelineHandle) -> usize {
    let dir = dir(data_dir);
    let files = pending(&dir);
    if files.is_empty() {
        return 0;
    }
    let now = SystemTime::now();
    let mut taken = Vec::new();
    let mut events = Vec::new();
    for path in files {
        match read(&path) {
            Ok(mut ev) => {
                crate::pipeline::stamp(&mut ev, InputKind::Internal, Some("vigil"), now);
                ev.set(fields::VIGIL_INPUT, "audit");
                events.push(Prepared::new(&ev));
                taken.push(path);
            }
            Err(why) => reject(&dir, &path, &why),
        }
    }
    let n = events.len();
    if n == 0 {
        return 0;
    }
    match pipeline
        .write_durable(
            events,
            vec![("vigil".into(), n as u64)],
            InputKind::Internal,
        )
        .await
    {
        Ok(_) => {
            for p in &taken {
                let _ = std::fs::remove_file(p);
            }
            metrics::counter!("vigil_audit_spool_taken_total").increment(n as u64);
            n
        }
        Err(e) => {
            // The files stay: the next pass tries again.
            tracing::error!(error = %e, records = n, "audit spool records were not stored; will retry");
            0
        }
    }
}

/// Takes the spool now and then every [`INTERVAL`] until the pipeline closes.
pub async fn run(data_dir: PathBuf, pipeline: Arc<PipelineHandle>) {
    loop {
        take(&data_dir, &pipeline).await;
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Category;

    #[test]
    fn records_are_whole_files_owner_only_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            Record::new("user_created", Category::Iam, true).target("ann"),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let files = pending(&dir(d.path()));
        assert_eq!(files, vec![p.clone()]);
        let ev = read(&p).unwrap();
        assert_eq!(ev.get_str(fields::EVENT_ACTION), Some("user_created"));
        assert_eq!(ev.get_str("user.target.name"), Some("ann"));
        assert_eq!(ev.get_str("vigil.audit.origin"), Some("cli"));
        assert!(ev.get_str(fields::USER_NAME).unwrap().starts_with("os:"));
        assert!(ev.timestamp().is_some());
    }

    #[test]
    fn temporary_and_foreign_files_are_not_taken() {
        let d = tempfile::tempdir().unwrap();
        let s = dir(d.path());
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join(".tmp-1.json"), "{}").unwrap();
        std::fs::write(s.join("notes.txt"), "x").unwrap();
        assert!(pending(&s).is_empty());
        std::fs::write(s.join("2.json"), "{\"message\":\"x\"}").unwrap();
        assert!(read(&s.join("2.json"))
            .unwrap_err()
            .contains("not an audit record"));
        std::fs::write(s.join("3.json"), "{").unwrap();
        assert!(read(&s.join("3.json")).is_err());
        std::fs::write(s.join("4.json"), vec![b' '; 70 * 1024]).unwrap();
        assert!(read(&s.join("4.json")).unwrap_err().contains("more than"));
    }
}
