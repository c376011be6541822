//! vigil-query
