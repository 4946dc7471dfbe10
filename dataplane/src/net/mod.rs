//! The sans-IO link and network layer.
