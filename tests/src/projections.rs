//! Projections: read models from the log (owned by the projections work).
