//! Packet-buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{acquire_object, release_object};
use super::{DpdkError, Mbuf};

/// A pool of packet buffers. Cloning yields another handle to the same pool; the pool
/// is released when the last handle (including the one each [`super::Port`] keeps for
/// its RX queues) is dropped.
///
/// # Thread safety
///
/// `Mempool` is `Send + Sync`: a pool built by `rte_pktmbuf_pool_create` uses the
/// default multi-producer/multi-consumer ring ops, so get and put are safe from any
/// number of threads at once. Each EAL lcore uses its own per-lcore object cache (no
/// sharing); non-EAL threads (lcore id `LCORE_ID_ANY`) bypass the caches and go to the
/// MP/MC ring directly. The counters ([`Mempool::available`], [`Mempool::in_use`]) read
/// the caches without locks and are approximate while other lcores are active.
///
/// # Release
///
/// On the last drop the pool is freed only if none of its mbufs is out
/// ([`Mempool::in_use`] is 0); otherwise it is leaked (logged), because freeing it would
/// leave those mbufs pointing into freed memory. A leaked pool also keeps
/// [`super::Eal`] from running `rte_eal_cleanup`.
#[derive(Debug, Clone)]
pub struct Mempool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ptr: NonNull<sys::rte_mempool>,
    name: String,
    data_room: u16,
    account: PoolAccount,
}

/// What the TCP engines allocating from one pool hold, summed over the lcores that share
/// it: each lcore reports the change since its last report (`lcore::Worker`'s memory
/// check), so the sum is as fresh as the slowest report (about a millisecond). Linux
/// keeps the same sums per protocol (`tcp_memory_allocated`, `tcp_sockets_allocated`).
#[derive(Debug, Default)]
pub struct PoolAccount {
    bytes: AtomicUsize,
    connections: AtomicUsize,
}

/// One lcore's holding, or the sum over the lcores ([`PoolAccount::report`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holding {
    /// Buffer bytes the connections' queues pin.
    pub bytes: usize,
    /// Connections.
    pub connections: usize,
}

impl PoolAccount {
    /// Replaces `before` (what this reporter said last time) by `now` in the sums and
    /// returns the new sums.
    pub fn report(&self, before: Holding, now: Holding) -> Holding {
        Holding {
            bytes: Self::move_by(&self.bytes, before.bytes, now.bytes),
            connections: Self::move_by(&self.connections, before.connections, now.connections),
        }
    }

    fn move_by(sum: &AtomicUsize, before: usize, now: usize) -> usize {
        if now >= before {
            sum.fetch_add(now - before, Ordering::Relaxed).wrapping_add(now - before)
        } else {
            sum.fetch_sub(before - now, Ordering::Relaxed).wrapping_sub(before - now)
        }
    }
}

// SAFETY: the pointer is to a DPDK mempool whose operations are thread-safe (MP/MC ring
// plus per-lcore caches, see the type docs); Inner only hands it to DPDK functions that
// are documented as callable concurrently, and frees it once, in Drop, when no other
// handle exists.
unsafe impl Send for Inner {}
// SAFETY: as for Send: every operation reachable through &Inner is safe to run
// concurrently on the same pool.
unsafe impl Sync for Inner {}

/// Where a pool's objects lie, as DPDK 22.11's `net_af_xdp` sees it: it registers one
/// UMEM starting at the first memory chunk and spanning `populated_size` objects
/// (`get_base_addr`, `xdp_umem_configure` in `drivers/net/af_xdp/rte_eth_af_xdp.c`). An
/// mbuf outside that span becomes a descriptor the kernel rejects as invalid; on Linux
/// 6.18 the TX ring then stops at it for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    /// Memory chunks the pool was populated from (1 when contiguous).
    pub chunks: u32,
    /// Bytes per object: header, mbuf, private area, data room, trailer.
    pub object_size: u32,
    /// Objects that lie outside the span the PMD registers.
    pub objects_outside_umem: u32,
}

impl MemoryLayout {
    /// Whether every object lies where the AF_XDP PMD assumes.
    pub fn fits_af_xdp_umem(&self) -> bool {
        self.objects_outside_umem == 0
    }
}

/// Longest pool name DPDK accepts: the memzone name is "MP_" + name, NUL included.
const MAX_NAME_LEN: usize = sys::STRAIT_MEMPOOL_NAMESIZE as usize - 1;

impl Mempool {
    /// Creates a pool of `n` mbufs with a per-lcore cache of `cache` mbufs and
    /// `data_room` bytes of buffer each (headroom included: use
    /// [`Mempool::DEFAULT_DATA_ROOM`] for 2048 bytes + headroom) on NUMA `socket`
    /// (`-1` for any). `name` must be unique in the process.
    pub fn new(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        Mempool::create(name, n, cache, data_room, socket, false)
    }

    /// As [`Mempool::new`], with the objects packed back to back in one span of memory
    /// (`RTE_MEMPOOL_F_NO_IOVA_CONTIG`: an object may cross a page boundary), which is what
    /// DPDK 22.11's `net_af_xdp` assumes of the pool it registers as UMEM (see
    /// [`MemoryLayout`]). Not for pools a device DMAs into through physical addresses:
    /// such a buffer may span two pages that are not physically adjacent.
    pub fn new_packed(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        Mempool::create(name, n, cache, data_room, socket, true)
    }

    fn create(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
        packed: bool,
    ) -> Result<Mempool, DpdkError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool name {name:?} must be 1..={MAX_NAME_LEN} bytes"
            )));
        }
        let c_name = CString::new(name).map_err(|_| {
            DpdkError::InvalidArgument(format!("mempool name {name:?} contains a NUL byte"))
        })?;
        if n == 0 {
            return Err(DpdkError::InvalidArgument(
                "mempool size must be > 0".to_owned(),
            ));
        }
        acquire_object()?;
        // SAFETY: the EAL is running (acquire_object checked); c_name is a valid C
        // string that DPDK copies; the remaining arguments are plain integers that DPDK
        // validates (returning NULL + rte_errno on error).
        let ptr = unsafe {
            if packed {
                sys::strait_pktmbuf_pool_create_packed(c_name.as_ptr(), n, cache, data_room, socket)
            } else {
                sys::rte_pktmbuf_pool_create(c_name.as_ptr(), n, cache, 0, data_room, socket)
            }
        };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Mempool {
                inner: Arc::new(Inner {
                    ptr,
                    name: name.to_owned(),
                    data_room,
                    account: PoolAccount::default(),
                }),
            }),
            None => {
                let err = DpdkError::last("rte_pktmbuf_pool_create");
                release_object();
                Err(err)
            }
        }
    }

    /// `RTE_MBUF_DEFAULT_DATAROOM` (2048) + `RTE_PKTMBUF_HEADROOM`.
    pub const DEFAULT_DATA_ROOM: u16 =
        sys::STRAIT_MBUF_DEFAULT_DATAROOM + sys::STRAIT_PKTMBUF_HEADROOM;

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Buffer size of each mbuf, headroom included.
    pub fn data_room(&self) -> u16 {
        self.inner.data_room
    }

    /// What the TCP engines allocating from this pool hold ([`PoolAccount`]).
    pub fn account(&self) -> &PoolAccount {
        &self.inner.account
    }

    /// Free mbufs (ring + per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive while self exists; the count is a racy read that
        // DPDK documents as safe to call concurrently.
        unsafe { sys::strait_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs taken from the pool and not yet returned.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for available().
        unsafe { sys::strait_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    /// Allocates one mbuf (see [`Mbuf::alloc`]).
    pub fn alloc(&self) -> Result<Mbuf, DpdkError> {
        Mbuf::alloc(self)
    }

    /// Allocates `n` mbufs at once, appending them to `out`; all or nothing.
    pub fn alloc_bulk(&self, out: &mut Vec<Mbuf>, n: usize) -> Result<(), DpdkError> {
        let count = u32::try_from(n)
            .map_err(|_| DpdkError::InvalidArgument(format!("bulk of {n} mbufs")))?;
        out.reserve(n);
        let len = out.len();
        // SAFETY: `out` has room for n more elements past len; Mbuf is a
        // repr(transparent) NonNull<rte_mbuf>, so the spare capacity is a valid array of
        // n `struct rte_mbuf *` for DPDK to write. The pool is alive.
        let rc = unsafe {
            sys::strait_pktmbuf_alloc_bulk(
                self.inner.ptr.as_ptr(),
                out.as_mut_ptr().add(len).cast::<*mut sys::rte_mbuf>(),
                count,
            )
        };
        if rc != 0 {
            return Err(DpdkError::PoolExhausted);
        }
        // SAFETY: on success DPDK wrote n non-null, freshly reset mbufs (each with one
        // reference that we now own) into the slots len..len+n.
        unsafe { out.set_len(len + n) };
        Ok(())
    }

    /// How the pool lies in memory (see [`MemoryLayout`]).
    pub fn layout(&self) -> Result<MemoryLayout, DpdkError> {
        let (mut chunks, mut object_size, mut outside) = (0u32, 0u32, 0u32);
        // SAFETY: the pool is alive while self exists and fully populated (created by
        // rte_pktmbuf_pool_create); the shim only reads its memory list and iterates its
        // objects; the out-pointers are valid.
        let rc = unsafe {
            sys::strait_mempool_umem_fit(self.inner.ptr.as_ptr(), &mut chunks, &mut object_size, &mut outside)
        };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_mempool_obj_iter", rc));
        }
        Ok(MemoryLayout { chunks, object_size, objects_outside_umem: outside })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: the pool is still alive (we are its last handle).
        let in_use = unsafe { sys::strait_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            tracing::warn!(pool = %self.name, in_use, "mempool dropped with mbufs outstanding; leaking it");
            return;
        }
        // SAFETY: this is the last handle (Arc), so no new mbuf can be allocated from the
        // pool, and none is outstanding, so nothing refers to its memory any more.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
        release_object();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_sums_what_each_reporter_holds_now() {
        let a = PoolAccount::default();
        let h = |bytes, connections| Holding { bytes, connections };
        assert_eq!(a.report(h(0, 0), h(4096, 2)), h(4096, 2));
        assert_eq!(a.report(h(0, 0), h(1000, 1)), h(5096, 3), "a second lcore adds its own");
        assert_eq!(a.report(h(4096, 2), h(96, 1)), h(1096, 2), "the first replaces its report");
        assert_eq!(a.report(h(1000, 1), h(0, 0)), h(96, 1));
    }

    #[test]
    fn new_without_eal_is_an_error_not_a_crash() {
        // The lib's unit tests never start an EAL.
        assert_eq!(
            Mempool::new("unit", 64, 0, 2048, -1).err(),
            Some(DpdkError::EalNotRunning)
        );
    }

    #[test]
    fn rejects_bad_names_before_calling_dpdk() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            Mempool::new(&long, 64, 0, 2048, -1),
            Err(DpdkError::InvalidArgument(_))
        ));
        assert!(matches!(
            Mempool::new("", 64, 0, 2048, -1),
            Err(DpdkError::InvalidArgument(_))
        ));
        assert!(matches!(
            Mempool::new("a\0b", 64, 0, 2048, -1),
            Err(DpdkError::InvalidArgument(_))
        ));
    }
}
