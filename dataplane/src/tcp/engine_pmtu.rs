//! Path MTU in the engine (part of [`super::Engine`]): ICMP "fragmentation needed" and
//! ICMPv6 "packet too big" found their connection by the quoted tuple and lower its path
//! MTU (`tcp_v4_err` / `tcp_v6_err`), and a router's advertised IPv6 link MTU lowers every
//! IPv6 connection's (`rt6_mtu_change`). The per-connection rules are in
//! `connection/pmtu.rs`.

use super::*;

impl<P: Payload> Engine<P> {
    /// ICMP "fragmentation needed" (type 3 code 4) quoting a segment we sent from `local`
    /// to `remote` with sequence number `seq` (RFC 1191; validated per RFC 5927 §4.1). See
    /// [`Connection::handle_icmp_frag_needed`]. Returns the new path MTU.
    pub fn handle_icmp_frag_needed(
        &mut self,
        local: impl Into<SocketAddr>,
        remote: impl Into<SocketAddr>,
        seq: SeqNum,
        next_hop_mtu: u16,
        now: Instant,
    ) -> Result<u32, PmtuError> {
        let tuple = FourTuple { local: local.into(), remote: remote.into() };
        self.icmp_input(tuple, now, |conn, shared| conn.handle_icmp_frag_needed(shared, seq, next_hop_mtu))
    }

    /// ICMPv6 "packet too big" (RFC 8201) quoting a segment we sent from `local` to
    /// `remote` with sequence number `seq`, reporting `mtu` (Linux `tcp_v6_err`): validated
    /// and counted as [`Self::handle_icmp_frag_needed`]; see
    /// [`Connection::handle_icmpv6_packet_too_big`]. Returns the new path MTU.
    pub fn handle_icmpv6_packet_too_big(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seq: SeqNum,
        mtu: u32,
        now: Instant,
    ) -> Result<u32, PmtuError> {
        let tuple = FourTuple { local: plain(local), remote: plain(remote) };
        self.icmp_input(tuple, now, |conn, shared| conn.handle_icmpv6_packet_too_big(shared, seq, mtu))
    }

    /// The connection an ICMP error quotes, found by its tuple (`tcp_v4_err` /
    /// `tcp_v6_err`), and the error applied; an unknown one counts in `IcmpInErrors`.
    fn icmp_input(
        &mut self,
        tuple: FourTuple,
        now: Instant,
        apply: impl FnOnce(&mut Connection<P>, &mut Shared) -> Result<u32, PmtuError>,
    ) -> Result<u32, PmtuError> {
        let Some(&id) = self.table.get(&tuple) else {
            self.shared.counters.icmp_in_errors += 1;
            return Err(PmtuError::UnknownConnection);
        };
        let (e, shared) = self.split(id).ok_or(PmtuError::UnknownConnection)?;
        let r = apply(&mut e.conn, shared);
        if r == Err(PmtuError::UnknownConnection) {
            shared.counters.icmp_in_errors += 1;
        }
        self.after_op(id, now);
        r
    }

    /// The IPv6 link MTU a router advertised (RFC 4861 §6.3.4), the smallest over the
    /// ports, or `None` for the ports' own. New IPv6 connections size their segments and
    /// announce their MSS for it ([`TcpConfig::effective_mss_v6`]); established ones whose
    /// path MTU is larger come down to it at once, as for a "packet too big" (Linux
    /// `rt6_mtu_change` lowers the routes' MTU, which `tcp_sync_mss` follows). Returns how
    /// many connections came down. A walk of the connections, on a rare control event.
    pub fn set_ipv6_link_mtu(&mut self, mtu: Option<u16>, now: Instant) -> usize {
        if self.cfg.ipv6_link_mtu == mtu {
            return 0;
        }
        let mut cfg = (*self.cfg).clone();
        cfg.ipv6_link_mtu = mtu;
        self.cfg = Arc::new(cfg);
        let Some(mtu) = mtu else { return 0 };
        let ids: Vec<ConnId> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let e = s.entry.as_ref()?;
                let index = u32::try_from(i).ok()?;
                e.tuple.local.is_ipv6().then_some(ConnId { index, generation: s.generation })
            })
            .collect();
        let mut reduced = 0;
        for id in ids {
            if let Some((e, shared)) = self.split(id) {
                if e.conn.link_mtu_reduced(shared, u32::from(mtu)) {
                    reduced += 1;
                }
            }
            self.after_op(id, now);
        }
        reduced
    }
}
