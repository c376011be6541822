//! vigil-ledger
