//! checksum (in progress).
