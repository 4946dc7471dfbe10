//! isn (in progress).
