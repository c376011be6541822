//! vigil-ingest
