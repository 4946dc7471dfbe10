//! The `strait` library: configuration and logging shared by the `strait` binary.

#![deny(unsafe_code)]

pub mod admin;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod systemd;
