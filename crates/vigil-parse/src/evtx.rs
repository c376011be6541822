//! Windows event log files (EVTX), read record by record with bounds.
//!
//! The `evtx` crate's own record iterator collects each 64 KiB chunk's
//! records into memory before yielding them, and on a damaged chunk whose
//! record header claims a size of zero it never advances: the fuzz target
//! `evtx` found a 68 KiB file that grew that collection to gigabytes. This
//! reader walks the chunks itself, takes at most [`MAX_RECORDS_PER_CHUNK`]
//! records (more than a 64 KiB chunk can hold) and at most
//! [`MAX_ERRORS_PER_CHUNK`] unreadable ones from each, and stops a chunk at
//! the first record that does not move forward.

use std::io::{Read, Seek};
use std::sync::Arc;

use serde_json::Value;

/// More records than fit in a 64 KiB chunk (each takes at least 24 bytes
/// of header plus its body).
pub const MAX_RECORDS_PER_CHUNK: usize = 4096;

/// Unreadable records tolerated in one chunk before the rest is skipped.
pub const MAX_ERRORS_PER_CHUNK: usize = 64;

/// Most chunks read from one file (64 KiB each: 4 GiB).
pub const MAX_CHUNKS: usize = 65_536;

/// What one record gave: its JSON (evtx_dump form), or why it could not be read.
pub type RecordResult = Result<Value, String>;

/// Calls `f` with each record of `parser`, bounded as the module says.
/// Returns the number of records that could not be read (already passed to
/// `f` as errors).
pub fn for_each_record<T: Read + Seek>(
    parser: &mut evtx::EvtxParser<T>,
    f: &mut dyn FnMut(RecordResult),
) -> u64 {
    let settings = Arc::new(evtx::ParserSettings::default().num_threads(1));
    let mut bad = 0u64;
    for (n, chunk) in parser.chunks().enumerate() {
        if n >= MAX_CHUNKS {
            f(Err(format!(
                "more than {MAX_CHUNKS} chunks; the rest is skipped"
            )));
            bad += 1;
            break;
        }
        let mut data = match chunk {
            Ok(c) => c,
            Err(e) => {
                f(Err(format!("chunk {n}: {e}")));
                bad += 1;
                continue;
            }
        };
        let mut chunk = match data.parse(settings.clone()) {
            Ok(c) => c,
            Err(e) => {
                f(Err(format!("chunk {n}: {e}")));
                bad += 1;
                continue;
            }
        };
        let (mut taken, mut errors, mut last_id) = (0usize, 0usize, None);
        for rec in chunk.iter() {
            taken += 1;
            if taken > MAX_RECORDS_PER_CHUNK {
                f(Err(format!(
                    "chunk {n}: more than {MAX_RECORDS_PER_CHUNK} records; the rest of the chunk is skipped"
                )));
                bad += 1;
                break;
            }
            let read = match rec {
                Ok(r) => {
                    let id = r.event_record_id;
                    r.into_json_value()
                        .map(|v| (id, v))
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match read {
                Ok((id, v)) => {
                    // A damaged header can make the iterator yield the same
                    // record again and again without moving on.
                    if last_id == Some(id) {
                        f(Err(format!(
                            "chunk {n}: record {id} repeats; the rest of the chunk is skipped"
                        )));
                        bad += 1;
                        break;
                    }
                    last_id = Some(id);
                    f(Ok(v.data));
                }
                Err(e) => {
                    f(Err(format!("chunk {n}: {e}")));
                    bad += 1;
                    errors += 1;
                    if errors >= MAX_ERRORS_PER_CHUNK {
                        f(Err(format!(
                            "chunk {n}: {MAX_ERRORS_PER_CHUNK} unreadable records; the rest of the chunk is skipped"
                        )));
                        bad += 1;
                        break;
                    }
                }
            }
        }
    }
    bad
}
