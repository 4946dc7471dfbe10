//! syncookie (in progress).
