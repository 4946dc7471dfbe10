//! seq (in progress).
