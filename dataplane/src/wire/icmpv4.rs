//! icmpv4 (in progress).
