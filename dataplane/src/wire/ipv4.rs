//! ipv4 (in progress).
