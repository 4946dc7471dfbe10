//! TCP header view and emitter (in progress).
