//! Vigil's derived search index: which parts of the ledger a query must read.
//!
//! The ledger stays the source of truth; this crate only tells a search
//! which seq ranges can be skipped. Seqs are grouped into blocks
//! ([`IndexOptions::block_size`], 4096 by default) and blocks into chunk
//! files (`DATA_DIR/index/<first seq>.vidx`). For each block a [`Chunk`]
//! keeps the span of its events' `@timestamp`s and a Bloom filter of the
//! trigrams of all their values ([`grams`]). A query is turned into a
//! [`Need`]: the trigrams its literal text requires, combined by its
//! `AND`/`OR` structure. [`Index::candidates`] keeps a block only if its
//! time span overlaps the search window and its filter may hold every
//! trigram the query needs; the search then reads just those seqs and runs
//! the exact matcher on them, so the index never changes an answer, only
//! how much is read.
//!
//! ```
//! use vigil_index::{Index, IndexOptions, Need};
//! use vigil_ledger::{Ledger, LedgerOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = tempfile::tempdir()?;
//! let mut ledger = Ledger::open(&data.path().join("ledger"), LedgerOptions::default())?;
//! for i in 0..8 {
//!     let ip = if i == 6 { "203.0.113.77" } else { "10.0.0.1" };
//!     ledger.append(format!(r#"{{"source":{{"ip":"{ip}"}}}}"#).as_bytes())?;
//! }
//! let durable = ledger.commit()?;
//!
//! let opts = IndexOptions { block_size: 2, blocks_per_chunk: 2 };
//! let (mut index, _) = Index::open(&data.path().join("index"), opts)?;
//! index.build(&data.path().join("ledger"), durable)?;
//!
//! let query = vigil_query::parse("203.0.113.77")?;
//! let found = index.candidates(&Need::of(&query.root), None, None, 1, durable);
//! assert_eq!(found.ranges, vec![(7, 8)]); // one block of two seqs to read
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod bloom;
pub mod chunk;
pub mod columns;
mod cursor;
pub mod grams;
mod leaf_memo;
mod plan;
pub mod pushdown;
pub mod scan;
mod store;
mod walked;

use std::path::{Path, PathBuf};

pub use bloom::Bloom;
pub use chunk::{Block, Chunk, ChunkBuilder};
pub use columns::COLUMN_FIELDS;
pub use plan::Need;
pub use pushdown::{ColumnAnswerer, ColumnPlan};
pub use store::{
    build_chunk, build_chunk_with_cap, build_chunks, build_threads, run_prepared, BuildReport,
    Built, Candidates, Index, IndexOptions, OpenReport, Prepared,
};

/// Index failures.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// An index file is damaged or foreign.
    #[error("index file is corrupt: {0}")]
    Corrupt(String),
    /// Events were pushed out of seq order.
    #[error("seq {0} pushed out of order")]
    OutOfOrder(u64),
    /// Bad options.
    #[error("invalid index options: {0}")]
    Options(String),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] vigil_ledger::LedgerError),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl IndexError {
    fn io(path: &Path, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
