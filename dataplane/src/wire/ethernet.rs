//! ethernet (in progress).
