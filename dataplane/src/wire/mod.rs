//! Zero-copy wire views and emitters.
