//! vigil-server
