//! Value matching (placeholder).
