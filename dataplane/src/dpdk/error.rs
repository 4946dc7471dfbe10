//! Errors of the DPDK adapter.

use std::ffi::CStr;

use dpdk_sys as sys;

/// An error from the DPDK adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK call failed; `errno` is the (positive) DPDK/POSIX error number and `msg`
    /// its `rte_strerror` text.
    #[error("{op} failed: {msg} (errno {errno})")]
    Rte {
        /// The DPDK function that failed.
        op: &'static str,
        /// Positive error number.
        errno: i32,
        /// `rte_strerror(errno)`.
        msg: String,
    },
    /// `Eal::init` was already called in this process (DPDK allows one EAL per process).
    #[error("the DPDK EAL was already initialised in this process")]
    AlreadyInitialized,
    /// A DPDK object was requested while no EAL is running.
    #[error("the DPDK EAL is not running")]
    EalNotRunning,
    /// An argument was rejected before reaching DPDK.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The mempool has no free mbuf.
    #[error("mempool exhausted")]
    PoolExhausted,
    /// The operation needs exclusive access to an mbuf that is shared (its reference
    /// count is above one, e.g. a copy is queued for transmission).
    #[error("mbuf is shared (reference count > 1)")]
    SharedMbuf,
}

impl DpdkError {
    /// Builds [`DpdkError::Rte`] from an error number; the sign is ignored, since DPDK
    /// returns `-errno` from most calls and sets a positive `rte_errno` for others.
    pub fn from_errno(op: &'static str, errno: i32) -> Self {
        let errno = errno.saturating_abs();
        DpdkError::Rte {
            op,
            errno,
            msg: strerror(errno),
        }
    }

    /// Builds [`DpdkError::Rte`] from the calling thread's current `rte_errno`.
    pub fn last(op: &'static str) -> Self {
        // SAFETY: strait_rte_errno reads the calling thread's per-lcore (TLS) rte_errno
        // variable; it has no preconditions.
        let errno = unsafe { sys::strait_rte_errno() };
        Self::from_errno(op, errno)
    }

    /// The positive error number, for [`DpdkError::Rte`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            DpdkError::Rte { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// `rte_strerror(errno)` as an owned string.
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any integer and returns a pointer to a NUL-terminated
    // string (static, or in a per-thread buffer for unknown numbers); we copy it out
    // before any other DPDK call on this thread could overwrite that buffer.
    let ptr = unsafe { sys::rte_strerror(errno) };
    if ptr.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: ptr is non-null and NUL-terminated per the rte_strerror contract above.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_errno_normalises_sign_and_names_the_error() {
        let e = DpdkError::from_errno("rte_eth_dev_configure", -22);
        assert_eq!(e.errno(), Some(22));
        let text = e.to_string();
        assert!(text.starts_with("rte_eth_dev_configure failed: "), "{text}");
        assert!(text.contains("Invalid argument"), "{text}");
        assert!(text.ends_with("(errno 22)"), "{text}");
    }

    #[test]
    fn non_rte_errors_have_no_errno() {
        assert_eq!(DpdkError::PoolExhausted.errno(), None);
        assert_eq!(
            DpdkError::SharedMbuf.to_string(),
            "mbuf is shared (reference count > 1)"
        );
    }
}
