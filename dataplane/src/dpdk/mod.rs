//! Safe adapter over DPDK.
