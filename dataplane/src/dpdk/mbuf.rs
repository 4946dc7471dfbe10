//! Owned packet buffers (`struct rte_mbuf` chains).
//!
//! # Sharing and mutation
//!
//! [`Mbuf::clone_ref`] raises the reference count of every segment and returns a second
//! handle to the *same* buffers (not a copy): the TCP send path transmits such a
//! reference and keeps the original queued for retransmission (kernel `skb_clone`).
//! While a segment is shared, nobody may write it, or its metadata, since another handle
//! (possibly the PMD's TX ring, possibly on another lcore) reads it concurrently. Hence
//! every mutating method checks that the parts it writes are exclusively ours and
//! fails (returns `None`/`false`/an error) when they are not:
//!
//! | method                     | needs exclusive                                  |
//! |----------------------------|--------------------------------------------------|
//! | `data_mut`, `prepend`      | first segment, data and metadata                 |
//! | `adj`, `set_tx_offload`    | first segment metadata                           |
//! | `append`                   | first segment metadata, last segment data        |
//! | `trim`, `chain`            | first and last segment metadata                  |
//!
//! So a header mbuf may be prepended, offload-tagged and chained in front of a shared
//! payload: `hdr.chain(payload.clone_ref())`.

use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

use dpdk_sys as sys;

use super::{DpdkError, Mempool};

/// Packet-type constants for [`Mbuf::packet_type`] (`RTE_PTYPE_*`).
pub mod ptype {
    use dpdk_sys as sys;
    /// Mask of the L3 type.
    pub const L3_MASK: u32 = sys::RTE_PTYPE_L3_MASK;
    /// IPv4 without options.
    pub const L3_IPV4: u32 = sys::RTE_PTYPE_L3_IPV4;
    /// IPv4 with options.
    pub const L3_IPV4_EXT: u32 = sys::RTE_PTYPE_L3_IPV4_EXT;
    /// IPv4, options unknown.
    pub const L3_IPV4_EXT_UNKNOWN: u32 = sys::RTE_PTYPE_L3_IPV4_EXT_UNKNOWN;
    /// Mask of the L4 type.
    pub const L4_MASK: u32 = sys::RTE_PTYPE_L4_MASK;
    /// TCP.
    pub const L4_TCP: u32 = sys::RTE_PTYPE_L4_TCP;
    /// UDP.
    pub const L4_UDP: u32 = sys::RTE_PTYPE_L4_UDP;
}

/// Refcount above which [`Mbuf::clone_ref`] aborts rather than risk wrapping the
/// 16-bit counter (as `Arc` does on overflow).
const REFCNT_LIMIT: u16 = 1 << 15;

/// Receive-side checksum verdict of the NIC (`RTE_MBUF_F_RX_*_CKSUM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CksumStatus {
    /// Not checked by the device: verify in software.
    Unknown,
    /// Checked and wrong.
    Bad,
    /// Checked and correct.
    Good,
    /// The checksum field is not valid but the data integrity was verified (e.g. a
    /// virtual device that never computed it): treat as good.
    None,
}

impl CksumStatus {
    fn from_bits(bits: u64, bad: u64, good: u64) -> Self {
        match (bits & bad != 0, bits & good != 0) {
            (false, false) => CksumStatus::Unknown,
            (true, false) => CksumStatus::Bad,
            (false, true) => CksumStatus::Good,
            (true, true) => CksumStatus::None,
        }
    }
}

/// Transmit offload request for one packet: header lengths and what the device should
/// compute. See the send-path notes, §4 (offloads on the way out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// Ethernet header length (max 127).
    pub l2_len: u8,
    /// IP header length (max 511).
    pub l3_len: u16,
    /// TCP header length, options included (needed for TSO).
    pub l4_len: u8,
    /// MSS for TSO (payload bytes per generated segment).
    pub tso_segsz: u16,
    /// The packet is IPv4 (`RTE_MBUF_F_TX_IPV4`).
    pub ipv4: bool,
    /// The packet is IPv6 (`RTE_MBUF_F_TX_IPV6`): what a device needs to segment or
    /// checksum TCP over IPv6 (no IP checksum to fill in).
    pub ipv6: bool,
    /// Device computes the IPv4 header checksum (field must be 0).
    pub ip_cksum: bool,
    /// Device computes the TCP checksum (field must hold the pseudo-header sum,
    /// see [`ipv4_phdr_cksum`]).
    pub tcp_cksum: bool,
    /// Device computes the UDP checksum.
    pub udp_cksum: bool,
    /// Device segments the packet into `tso_segsz` chunks (implies `tcp_cksum`).
    pub tso: bool,
}

impl TxOffload {
    fn validate(&self) -> Result<(), DpdkError> {
        let bad = |m: &str| Err(DpdkError::InvalidArgument(format!("tx offload: {m}")));
        if self.l2_len > 127 {
            return bad("l2_len exceeds 7 bits");
        }
        if self.l3_len > 511 {
            return bad("l3_len exceeds 9 bits");
        }
        if self.tcp_cksum && self.udp_cksum {
            return bad("both TCP and UDP checksum requested");
        }
        if self.tso && (self.tso_segsz == 0 || self.l4_len == 0 || self.udp_cksum) {
            return bad("TSO needs a TCP packet with tso_segsz and l4_len");
        }
        if (self.ip_cksum || self.tcp_cksum || self.udp_cksum || self.tso)
            && (self.l2_len == 0 || self.l3_len == 0)
        {
            return bad("checksum/segmentation offload needs l2_len and l3_len");
        }
        if self.ip_cksum && !self.ipv4 {
            return bad("IP checksum offload on a non-IPv4 packet");
        }
        if self.ipv4 && self.ipv6 {
            return bad("a packet cannot be both IPv4 and IPv6");
        }
        Ok(())
    }

    fn flags(&self) -> u64 {
        let mut f = 0;
        if self.ipv4 {
            f |= sys::RTE_MBUF_F_TX_IPV4;
        }
        if self.ipv6 {
            f |= sys::RTE_MBUF_F_TX_IPV6;
        }
        if self.ip_cksum {
            f |= sys::RTE_MBUF_F_TX_IP_CKSUM;
        }
        if self.tso {
            f |= sys::RTE_MBUF_F_TX_TCP_SEG | sys::RTE_MBUF_F_TX_TCP_CKSUM;
        } else if self.tcp_cksum {
            f |= sys::RTE_MBUF_F_TX_TCP_CKSUM;
        } else if self.udp_cksum {
            f |= sys::RTE_MBUF_F_TX_UDP_CKSUM;
        }
        f
    }
}

/// An owned packet buffer chain; dropping it frees every segment (`rte_pktmbuf_free`,
/// which only returns a segment to its pool when its last reference goes).
///
/// `Send` (ownership can move between lcores: pools accept frees from any thread) but
/// not `Sync` (the accessors read metadata without synchronisation).
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf {
    ptr: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is one owned reference to an mbuf chain. Moving it to another thread
// moves that reference; freeing from any thread is supported by the pool (MP/MC ring,
// see Mempool). Shared state (other references made by clone_ref) is only written after
// an exclusivity check, with refcount updates being atomic.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Allocates an empty mbuf from `pool` (`rte_pktmbuf_alloc`), with the default
    /// headroom reserved for [`Mbuf::prepend`].
    pub fn alloc(pool: &Mempool) -> Result<Mbuf, DpdkError> {
        // SAFETY: the pool is alive for the duration of the call (borrowed).
        let ptr = unsafe { sys::strait_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(ptr)
            .map(|ptr| Mbuf { ptr })
            .ok_or(DpdkError::PoolExhausted)
    }

    /// Allocates an mbuf holding a copy of `bytes` (first segment only, so `bytes` must
    /// fit in the pool's data room minus headroom).
    pub fn from_slice(pool: &Mempool, bytes: &[u8]) -> Result<Mbuf, DpdkError> {
        let mut m = Mbuf::alloc(pool)?;
        let room = m.append(bytes.len()).ok_or_else(|| {
            DpdkError::InvalidArgument(format!("{} bytes exceed the mbuf tailroom", bytes.len()))
        })?;
        room.copy_from_slice(bytes);
        Ok(m)
    }

    fn raw(&self) -> *mut sys::rte_mbuf {
        self.ptr.as_ptr()
    }

    /// Total packet length over all segments (`pkt_len`).
    pub fn len(&self) -> usize {
        // SAFETY: self owns a reference to a live mbuf; reading a field (a plain load: the
        // shim's accessor would be a call per read).
        unsafe { (*self.raw()).pkt_len as usize }
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the first segment's data (`data_len`).
    pub fn data_len(&self) -> usize {
        // SAFETY: self owns a reference to a live mbuf; reading a field.
        usize::from(unsafe { (*self.raw()).data_len })
    }

    /// Size of the first segment's buffer (`buf_len`: headroom, data and tailroom of a
    /// one-segment mbuf), one field read where the three sums would be four calls.
    pub fn buf_len(&self) -> usize {
        // SAFETY: self owns a reference to a live mbuf; reading a field.
        usize::from(unsafe { (*self.raw()).buf_len })
    }

    /// Number of segments.
    pub fn nb_segs(&self) -> u16 {
        // SAFETY: self owns a reference to a live mbuf; reading a field.
        unsafe { (*self.raw()).nb_segs }
    }

    /// Free bytes before the first segment's data.
    pub fn headroom(&self) -> usize {
        // SAFETY: self owns a reference to a live mbuf; reading a field
        // (`rte_pktmbuf_headroom` is `data_off`).
        usize::from(unsafe { (*self.raw()).data_off })
    }

    /// Free bytes after the last segment's data (what [`Mbuf::append`] can add).
    pub fn tailroom(&self) -> usize {
        // SAFETY: self owns a reference to a live chain; lastseg only follows `next`.
        usize::from(unsafe {
            sys::strait_pktmbuf_tailroom(sys::strait_pktmbuf_lastseg(self.raw()))
        })
    }

    /// The first segment's data.
    pub fn data(&self) -> &[u8] {
        seg_slice(self.ptr)
    }

    /// The first segment's data, writable; `None` while the segment is shared.
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        if !seg_data_exclusive(self.ptr) {
            return None;
        }
        let len = self.data_len();
        // SAFETY: the first segment's buffer is referenced only through self (checked
        // above, acquire fence included) and &mut self keeps it that way for the
        // returned lifetime; mtod..mtod+data_len lies inside the buffer.
        Some(unsafe {
            std::slice::from_raw_parts_mut(sys::strait_pktmbuf_mtod(self.raw()).cast::<u8>(), len)
        })
    }

    /// Iterates over the data of every segment, in order.
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: Some(self.ptr),
            _owner: std::marker::PhantomData,
        }
    }

    /// Copies the whole packet (all segments) into a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for s in self.segments() {
            v.extend_from_slice(s);
        }
        v
    }

    /// Extends the packet by `n` bytes at the end of the last segment and returns them
    /// (uninitialised contents: previous buffer bytes); `None` if the last segment lacks
    /// tailroom or the parts written are shared.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        let last = self.last_seg();
        if !seg_meta_exclusive(self.ptr) || !seg_data_exclusive(last) {
            return None;
        }
        // SAFETY: head metadata and the last segment are ours alone (checked); the call
        // checks tailroom and returns NULL when it is too small.
        let p = unsafe { sys::strait_pktmbuf_append(self.raw(), n16) };
        let p = NonNull::new(p.cast::<u8>())?;
        // SAFETY: DPDK returned a pointer to n bytes inside the last segment's buffer,
        // which only self references; the borrow of self covers the slice's lifetime.
        Some(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), n) })
    }

    /// Extends the packet by `n` bytes in front of the first segment's data (into the
    /// headroom) and returns them; `None` without headroom or when shared.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        if !seg_data_exclusive(self.ptr) {
            return None;
        }
        // SAFETY: the first segment is ours alone (checked); the call checks headroom.
        let p = unsafe { sys::strait_pktmbuf_prepend(self.raw(), n16) };
        let p = NonNull::new(p.cast::<u8>())?;
        // SAFETY: DPDK returned a pointer to n bytes at the start of the first segment's
        // data, referenced only by self.
        Some(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), n) })
    }

    /// Removes `n` bytes from the start of the first segment; `false` (nothing changed)
    /// if the first segment holds fewer bytes or is shared.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        if !seg_meta_exclusive(self.ptr) {
            return false;
        }
        // SAFETY: the head's metadata is ours alone (checked); the call bounds-checks n
        // against data_len and returns NULL without change when too large.
        !unsafe { sys::strait_pktmbuf_adj(self.raw(), n16) }.is_null()
    }

    /// Removes `n` bytes from the end of the last segment; `false` (nothing changed) if
    /// the last segment holds fewer bytes or is shared.
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        if !seg_meta_exclusive(self.ptr) || !seg_meta_exclusive(self.last_seg()) {
            return false;
        }
        // SAFETY: head and last segment metadata are ours alone (checked); the call
        // bounds-checks n and returns -1 without change when too large.
        unsafe { sys::strait_pktmbuf_trim(self.raw(), n16) == 0 }
    }

    /// Appends the chain `tail` after the last segment. On failure (too many segments,
    /// or our last segment / head is shared) `tail` is handed back untouched. `tail`
    /// itself may be shared (e.g. a [`Mbuf::clone_ref`] of a queued payload).
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        if !seg_meta_exclusive(self.ptr) || !seg_meta_exclusive(self.last_seg()) {
            return Err(tail);
        }
        // SAFETY: head and last segment metadata are ours alone (checked), so `tail`
        // cannot contain any of our segments (each would have a second reference). The
        // shim only writes a shared tail's fields when its refcount is 1. On success the
        // reference `tail` held is now owned by our chain, so it is not freed here.
        let rc = unsafe { sys::strait_pktmbuf_chain(self.raw(), tail.raw()) };
        if rc == 0 {
            std::mem::forget(tail);
            Ok(())
        } else {
            Err(tail)
        }
    }

    /// A second handle to the same buffers: every segment's reference count goes up by
    /// one; each handle frees its reference on drop. Aborts the process if a refcount
    /// would exceed 2^15 (like `Arc` on overflow), which only runaway cloning reaches.
    pub fn clone_ref(&self) -> Mbuf {
        for seg in self.seg_ptrs() {
            if seg_refcnt(seg) >= REFCNT_LIMIT {
                tracing::error!("mbuf reference count overflow");
                std::process::abort();
            }
        }
        // SAFETY: self holds a reference to every segment of the live chain, so none can
        // be freed during the atomic increments.
        unsafe { sys::strait_pktmbuf_refcnt_update(self.raw(), 1) };
        Mbuf { ptr: self.ptr }
    }

    /// A new, exclusively owned mbuf viewing `len` bytes at `offset` of this
    /// single-segment mbuf's data, without copying them: an indirect mbuf
    /// (`rte_pktmbuf_clone`) whose header comes from `pool` and whose data window is
    /// narrowed to the range. The buffer gains a reference and is freed when the last
    /// view goes. Fails on a chain, a range outside the data, or an empty pool.
    pub fn clone_range(&self, pool: &Mempool, offset: usize, len: usize) -> Result<Mbuf, DpdkError> {
        if self.nb_segs() != 1 {
            return Err(DpdkError::InvalidArgument("clone_range needs a single-segment mbuf".into()));
        }
        let data_len = self.data_len();
        let end = offset.checked_add(len).filter(|&e| e <= data_len).ok_or_else(|| {
            DpdkError::InvalidArgument(format!("range {offset}+{len} outside {data_len} bytes"))
        })?;
        // SAFETY: self holds a reference to the live mbuf, so it cannot be freed during
        // the call; rte_pktmbuf_clone only reads its metadata and atomically raises the
        // direct buffer's reference count. The pool is alive (borrowed). It returns NULL
        // (nothing allocated) when the pool is empty.
        let ptr = unsafe { sys::rte_pktmbuf_clone(self.raw(), pool.as_ptr()) };
        let mut m = NonNull::new(ptr).map(|ptr| Mbuf { ptr }).ok_or(DpdkError::PoolExhausted)?;
        // The new header is ours alone (refcount 1), so adj and trim succeed on it.
        if !m.adj(offset) || !m.trim(data_len - end) {
            return Err(DpdkError::InvalidArgument("cannot narrow the cloned mbuf".into()));
        }
        Ok(m)
    }

    /// Whether `self` and `other` are handles to the same first segment (the same
    /// buffer and data window when both are single segments).
    pub fn same_mbuf(&self, other: &Mbuf) -> bool {
        self.ptr == other.ptr
    }

    /// Reference count of the first segment.
    pub fn refcnt(&self) -> u16 {
        seg_refcnt(self.ptr)
    }

    /// Whether any segment's buffer is shared with another handle.
    pub fn is_shared(&self) -> bool {
        self.seg_ptrs().any(|s| !seg_data_exclusive(s))
    }

    /// Raw offload flags (`ol_flags`).
    pub fn ol_flags(&self) -> u64 {
        // SAFETY: self owns a reference to a live mbuf; reading a field.
        unsafe { (*self.raw()).ol_flags }
    }

    /// The device's verdict on the IPv4 header checksum.
    pub fn ip_cksum(&self) -> CksumStatus {
        CksumStatus::from_bits(
            self.ol_flags(),
            u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_BAD),
            u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD),
        )
    }

    /// The device's verdict on the TCP/UDP checksum.
    pub fn l4_cksum(&self) -> CksumStatus {
        CksumStatus::from_bits(
            self.ol_flags(),
            u64::from(sys::RTE_MBUF_F_RX_L4_CKSUM_BAD),
            u64::from(sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD),
        )
    }

    /// Packet type recognised by the device (`RTE_PTYPE_*`, see [`ptype`]); 0 = unknown.
    pub fn packet_type(&self) -> u32 {
        // SAFETY: self owns a reference to a live mbuf; reading a field.
        unsafe { sys::strait_mbuf_packet_type(self.raw()) }
    }

    /// The RSS hash the device computed, if it supplied one.
    pub fn rss_hash(&self) -> Option<u32> {
        if self.ol_flags() & u64::from(sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: self owns a reference to a live mbuf; reading a field.
        Some(unsafe { sys::strait_mbuf_rss_hash(self.raw()) })
    }

    /// Requests transmit offloads: writes the header lengths and replaces the
    /// `RTE_MBUF_F_TX_*` flags. Fails on inconsistent requests or a shared head.
    pub fn set_tx_offload(&mut self, o: TxOffload) -> Result<(), DpdkError> {
        o.validate()?;
        if !seg_meta_exclusive(self.ptr) {
            return Err(DpdkError::SharedMbuf);
        }
        let flags = (self.ol_flags() & !sys::RTE_MBUF_F_TX_OFFLOAD_MASK) | o.flags();
        // SAFETY: the head's metadata is ours alone (checked); the lengths were checked
        // against their bitfield widths by validate().
        unsafe {
            sys::strait_mbuf_set_tx_offload(
                self.raw(),
                u16::from(o.l2_len),
                o.l3_len,
                u16::from(o.l4_len),
                o.tso_segsz,
            );
            sys::strait_mbuf_set_ol_flags(self.raw(), flags);
        }
        Ok(())
    }

    /// The transmit offload request currently set (read back from the mbuf).
    pub fn tx_offload(&self) -> TxOffload {
        let f = self.ol_flags();
        let p = self.raw();
        // SAFETY: self owns a reference to a live mbuf; reading fields.
        let (l2, l3, l4, segsz) = unsafe {
            (
                sys::strait_mbuf_l2_len(p),
                sys::strait_mbuf_l3_len(p),
                sys::strait_mbuf_l4_len(p),
                sys::strait_mbuf_tso_segsz(p),
            )
        };
        let l4_kind = f & sys::RTE_MBUF_F_TX_L4_MASK;
        TxOffload {
            l2_len: u8::try_from(l2).unwrap_or(u8::MAX),
            l3_len: l3,
            l4_len: u8::try_from(l4).unwrap_or(u8::MAX),
            tso_segsz: segsz,
            ipv4: f & sys::RTE_MBUF_F_TX_IPV4 != 0,
            ipv6: f & sys::RTE_MBUF_F_TX_IPV6 != 0,
            ip_cksum: f & sys::RTE_MBUF_F_TX_IP_CKSUM != 0,
            tcp_cksum: l4_kind == sys::RTE_MBUF_F_TX_TCP_CKSUM,
            udp_cksum: l4_kind == sys::RTE_MBUF_F_TX_UDP_CKSUM,
            tso: f & sys::RTE_MBUF_F_TX_TCP_SEG != 0,
        }
    }

    /// Gives up ownership without freeing (e.g. handing the mbuf to a PMD).
    pub(crate) fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.raw();
        std::mem::forget(self);
        p
    }

    /// Takes ownership of one reference to an mbuf chain.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf chain head whose reference the caller owns and gives
    /// up; nothing else may free that reference.
    #[allow(dead_code)]
    pub(crate) unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { ptr }
    }

    fn last_seg(&self) -> NonNull<sys::rte_mbuf> {
        // SAFETY: self owns a reference to a live chain; lastseg follows `next` links.
        let p = unsafe { sys::strait_pktmbuf_lastseg(self.raw()) };
        NonNull::new(p).unwrap_or(self.ptr)
    }

    fn seg_ptrs(&self) -> impl Iterator<Item = NonNull<sys::rte_mbuf>> + '_ {
        std::iter::successors(Some(self.ptr), |s| {
            // SAFETY: `s` is a segment of the chain self keeps alive; `next` is a plain
            // field of `rte_mbuf` in DPDK 22.11, read here as `data_len` is (the shim's
            // `strait_mbuf_next` cost a call per segment on the payload paths).
            NonNull::new(unsafe { (*s.as_ptr()).next })
        })
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns one reference to the chain; rte_pktmbuf_free drops one
        // reference per segment and returns segments whose count reaches zero.
        unsafe { sys::strait_pktmbuf_free(self.raw()) }
    }
}

/// Iterator over the data of each segment of an [`Mbuf`].
#[derive(Debug)]
pub struct Segments<'a> {
    next: Option<NonNull<sys::rte_mbuf>>,
    _owner: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let seg = self.next?;
        // SAFETY: `seg` belongs to the chain borrowed for 'a; reading a field.
        self.next = NonNull::new(unsafe { (*seg.as_ptr()).next });
        Some(seg_slice(seg))
    }
}

/// The data of one segment. Callers guarantee `seg` lives for 'a (a borrowed chain).
fn seg_slice<'a>(seg: NonNull<sys::rte_mbuf>) -> &'a [u8] {
    let p = seg.as_ptr();
    // SAFETY: `seg` is a live segment of a chain the caller borrows for 'a; its data is
    // data_len bytes at mtod inside its buffer, and no handle writes it while we may read
    // (writers need exclusivity, which our reference rules out).
    // `rte_pktmbuf_mtod` is `buf_addr + data_off`, read here as plain loads.
    unsafe {
        let len = usize::from((*p).data_len);
        let base = (*p).buf_addr.cast::<u8>();
        if len == 0 || base.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(base.add(usize::from((*p).data_off)), len)
    }
}

fn seg_refcnt(seg: NonNull<sys::rte_mbuf>) -> u16 {
    // SAFETY: `seg` is a live segment of a chain the caller holds; atomic read.
    unsafe { sys::strait_mbuf_refcnt_read(seg.as_ptr()) }
}

/// Only one reference to this segment's mbuf header exists (ours). The acquire fence
/// orders our following writes after every access made by handles already dropped
/// (their release decrements).
fn seg_meta_exclusive(seg: NonNull<sys::rte_mbuf>) -> bool {
    let ok = seg_refcnt(seg) == 1;
    if ok {
        fence(Ordering::Acquire);
    }
    ok
}

/// Only we can see this segment's data buffer (also for indirect / external buffers).
fn seg_data_exclusive(seg: NonNull<sys::rte_mbuf>) -> bool {
    // SAFETY: `seg` is a live segment of a chain the caller holds; atomic reads only.
    let ok = unsafe { sys::strait_mbuf_data_exclusive(seg.as_ptr()) } != 0;
    if ok {
        fence(Ordering::Acquire);
    }
    ok
}

/// The IPv4 pseudo-header checksum DPDK expects in the TCP/UDP checksum field when the
/// device computes the checksum (`rte_ipv4_phdr_cksum`; with `tso` the length is left
/// out, as TSO devices add each segment's length). `ipv4_header` must hold at least the
/// 20-byte fixed header; `None` otherwise. RFC 9293 §3.1 (TCP checksum pseudo-header).
pub fn ipv4_phdr_cksum(ipv4_header: &[u8], tso: bool) -> Option<u16> {
    if ipv4_header.len() < std::mem::size_of::<sys::rte_ipv4_hdr>() {
        return None;
    }
    let flags = if tso { sys::RTE_MBUF_F_TX_TCP_SEG } else { 0 };
    // SAFETY: the slice holds at least sizeof(rte_ipv4_hdr) bytes and the struct is
    // packed (alignment 1); the function only reads it.
    let sum = unsafe {
        sys::strait_ipv4_phdr_cksum(ipv4_header.as_ptr().cast::<sys::rte_ipv4_hdr>(), flags)
    };
    // DPDK returns the value in network byte order as stored in memory.
    Some(u16::from_be(sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cksum_status_decodes_all_four_states() {
        let bad = u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_BAD);
        let good = u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD);
        assert_eq!(CksumStatus::from_bits(0, bad, good), CksumStatus::Unknown);
        assert_eq!(CksumStatus::from_bits(bad, bad, good), CksumStatus::Bad);
        assert_eq!(CksumStatus::from_bits(good, bad, good), CksumStatus::Good);
        assert_eq!(
            CksumStatus::from_bits(bad | good, bad, good),
            CksumStatus::None
        );
    }

    #[test]
    fn tx_offload_flags_follow_the_request() {
        let tso = TxOffload {
            l2_len: 14,
            l3_len: 20,
            l4_len: 32,
            tso_segsz: 1448,
            ipv4: true,
            ipv6: false,
            ip_cksum: true,
            tcp_cksum: true,
            udp_cksum: false,
            tso: true,
        };
        assert!(tso.validate().is_ok());
        let f = tso.flags();
        assert_ne!(f & sys::RTE_MBUF_F_TX_TCP_SEG, 0);
        assert_eq!(f & sys::RTE_MBUF_F_TX_L4_MASK, sys::RTE_MBUF_F_TX_TCP_CKSUM);
        assert_ne!(f & sys::RTE_MBUF_F_TX_IP_CKSUM, 0);
        assert_ne!(f & sys::RTE_MBUF_F_TX_IPV4, 0);
        let udp = TxOffload {
            l2_len: 14,
            l3_len: 20,
            ipv4: true,
            udp_cksum: true,
            ..Default::default()
        };
        assert_eq!(
            udp.flags() & sys::RTE_MBUF_F_TX_L4_MASK,
            sys::RTE_MBUF_F_TX_UDP_CKSUM
        );
        assert_eq!(TxOffload::default().flags(), 0);
        // TSO over IPv6: `RTE_MBUF_F_TX_IPV6`, no IP checksum.
        let tso6 = TxOffload { l3_len: 40, ipv4: false, ipv6: true, ip_cksum: false, ..tso };
        assert!(tso6.validate().is_ok());
        let f = tso6.flags();
        assert_ne!(f & sys::RTE_MBUF_F_TX_IPV6, 0);
        assert_eq!(f & (sys::RTE_MBUF_F_TX_IPV4 | sys::RTE_MBUF_F_TX_IP_CKSUM), 0);
        assert_ne!(f & sys::RTE_MBUF_F_TX_TCP_SEG, 0);
        assert!(TxOffload { ipv4: true, ..tso6 }.validate().is_err(), "both families");
        assert!(TxOffload { ip_cksum: true, ..tso6 }.validate().is_err(), "no IP checksum over IPv6");
    }

    #[test]
    fn inconsistent_tx_offload_is_rejected() {
        let base = TxOffload {
            l2_len: 14,
            l3_len: 20,
            ipv4: true,
            ..Default::default()
        };
        for bad in [
            TxOffload {
                l2_len: 128,
                ..base
            },
            TxOffload {
                l3_len: 512,
                ..base
            },
            TxOffload {
                tcp_cksum: true,
                udp_cksum: true,
                ..base
            },
            TxOffload {
                tso: true,
                tso_segsz: 0,
                l4_len: 20,
                ..base
            },
            TxOffload {
                tso: true,
                tso_segsz: 1460,
                l4_len: 0,
                ..base
            },
            TxOffload {
                ip_cksum: true,
                ipv4: false,
                ..base
            },
            TxOffload {
                tcp_cksum: true,
                l3_len: 0,
                ..base
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(DpdkError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pseudo_header_checksum_matches_rfc_sum() {
        // 10.0.0.1 -> 10.0.0.2, TCP, total length 60 (20 IP + 40 TCP).
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&60u16.to_be_bytes());
        h[8] = 64;
        h[9] = 6;
        h[12..16].copy_from_slice(&[10, 0, 0, 1]);
        h[16..20].copy_from_slice(&[10, 0, 0, 2]);
        // One's-complement sum of src, dst, zero+proto, TCP length (RFC 9293 §3.1).
        let words = [0x0a00u32, 0x0001, 0x0a00, 0x0002, 6, 40];
        let mut s: u32 = words.iter().sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(ipv4_phdr_cksum(&h, false), Some(s as u16));
        let mut s_tso: u32 = words[..5].iter().sum();
        while s_tso > 0xffff {
            s_tso = (s_tso & 0xffff) + (s_tso >> 16);
        }
        assert_eq!(ipv4_phdr_cksum(&h, true), Some(s_tso as u16));
        assert_eq!(ipv4_phdr_cksum(&h[..19], false), None);
    }
}
