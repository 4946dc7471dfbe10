//! Waiting for RX interrupts: the calling thread's DPDK epoll instance
//! (`RTE_EPOLL_PER_THREAD`), fed by the RX queues registered with
//! [`super::Port::rx_intr_register`] and by one wake-up socket per thread.
//!
//! This is how an idle lcore stops polling without adding latency to the first frame
//! after a quiet spell (DPDK's `l3fwd-power` pattern: arm the queue's interrupt, poll once
//! more, then block in `rte_epoll_wait`).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use dpdk_sys as sys;

use super::DpdkError;

/// Blocks the calling thread until a registered RX queue has a frame, the wake-up socket
/// is readable, a signal arrives or `timeout_ms` milliseconds pass. Returns the number of
/// events (0: timeout).
pub fn wait(timeout_ms: u16) -> Result<usize, DpdkError> {
    // SAFETY: waits on this thread's epoll instance (created by DPDK on first use); the
    // shim passes its own event array of the size it declares.
    let n = unsafe { sys::strait_epoll_wait(i32::from(timeout_ms)) };
    usize::try_from(n).map_err(|_| DpdkError::from_errno("rte_epoll_wait", std::io::Error::last_os_error().raw_os_error().unwrap_or(0)))
}

/// Adds `socket` to the calling thread's epoll instance: data on it ends a [`wait`].
/// One socket per thread (the registration record is thread-local in the shim); the
/// socket must stay open as long as the thread may wait.
pub fn register_wake_socket(socket: &UnixDatagram) -> Result<(), DpdkError> {
    // SAFETY: the fd is open (borrowed from a live socket); the shim registers it with
    // a thread-local record that outlives every later wait on this thread.
    let rc = unsafe { sys::strait_epoll_add_wake_fd(socket.as_raw_fd()) };
    if rc < 0 {
        return Err(DpdkError::from_errno("rte_epoll_ctl", std::io::Error::last_os_error().raw_os_error().unwrap_or(0)));
    }
    Ok(())
}
