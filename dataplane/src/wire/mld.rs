//! Multicast Listener Discovery for a host (RFC 3810, MLDv2; RFC 2710 queries, MLDv1, are
//! understood too): queries parsed from an ICMPv6 message, version 2 reports emitted, and
//! the hop-by-hop header with the router alert option every MLD message carries (RFC 2711).
//!
//! A host reports the groups it listens to so that switches snooping MLD forward them to
//! it: without reports, a snooping switch may never deliver the neighbour solicitations
//! for our addresses (their solicited-node groups).

use std::net::Ipv6Addr;

use super::icmpv6;
use super::ipv6::next_header;

/// ICMPv6 type of a query (RFC 3810 §5.1, RFC 2710 §3.6).
pub const QUERY: u8 = 130;
/// ICMPv6 type of a version 2 report (RFC 3810 §5.2).
pub const REPORT_V2: u8 = 143;
/// Where version 2 reports go: all MLDv2-capable routers (RFC 3810 §5.2.14).
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// Every MLD message's hop limit (RFC 3810 §5).
pub const HOP_LIMIT: u8 = 1;

/// A hop-by-hop options header carrying the router alert option with value 0 ("MLD",
/// RFC 2711 §2.1), padded to 8 bytes, followed by ICMPv6.
pub const HOP_BY_HOP_ROUTER_ALERT: [u8; 8] = [next_header::ICMPV6, 0, 5, 2, 0, 0, 1, 0];

/// Multicast address record types (RFC 3810 §5.2.12).
pub mod record {
    /// Current state: listening to every source (our answer to a query).
    pub const MODE_IS_EXCLUDE: u8 = 2;
    /// State change: now listening to every source (a join).
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
}

/// Size of a query without sources (the MLDv1 query; an MLDv2 one is at least 28).
const QUERY_LEN: usize = 24;
/// Size of a report's fixed part, and of one record without sources.
const REPORT_HEADER_LEN: usize = 8;
const RECORD_LEN: usize = 20;

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than a query, or not a query.
    Malformed,
}

/// A query: the longest a host may wait before answering, and the group asked about
/// (unspecified: every group, a general query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Maximum response delay in milliseconds.
    pub max_response_ms: u32,
    /// The group, or `::` for a general query.
    pub group: Ipv6Addr,
}

impl Query {
    /// Parses the ICMPv6 message `msg` (checksum already verified).
    pub fn parse(msg: &[u8]) -> Result<Query, Error> {
        if msg.len() < QUERY_LEN || msg[0] != QUERY {
            return Err(Error::Malformed);
        }
        let code = u16::from_be_bytes([msg[4], msg[5]]);
        let mut group = [0u8; 16];
        group.copy_from_slice(&msg[8..24]);
        // RFC 3810 §5.1.3: from 32768 on, a floating-point code; MLDv1's is plain
        // milliseconds and below 32768 both agree.
        let max_response_ms = if code < 0x8000 {
            u32::from(code)
        } else {
            let exp = u32::from((code >> 12) & 0x7);
            let mant = u32::from(code & 0x0fff);
            (mant | 0x1000) << (exp + 3)
        };
        Ok(Query { max_response_ms, group: Ipv6Addr::from(group) })
    }

    /// Whether this is a general query (about every group).
    pub fn is_general(&self) -> bool {
        self.group.is_unspecified()
    }
}

/// The length of a version 2 report with `records` records (no sources).
pub fn report_len(records: usize) -> usize {
    REPORT_HEADER_LEN + RECORD_LEN * records
}

/// Writes a version 2 report from `src` with one record of type `kind` (see [`record`]) per
/// group into `buf` (exactly [`report_len`] bytes), checksum included. Fails when `buf`
/// has another length or there are more than 65 535 groups.
pub fn emit_report(src: Ipv6Addr, kind: u8, groups: &[Ipv6Addr], buf: &mut [u8]) -> Result<(), Error> {
    let n = u16::try_from(groups.len()).map_err(|_| Error::Malformed)?;
    if buf.len() != report_len(groups.len()) {
        return Err(Error::Malformed);
    }
    buf.fill(0);
    buf[0] = REPORT_V2;
    buf[6..8].copy_from_slice(&n.to_be_bytes());
    for (g, rec) in groups.iter().zip(buf[REPORT_HEADER_LEN..].chunks_exact_mut(RECORD_LEN)) {
        rec[0] = kind;
        rec[4..20].copy_from_slice(&g.octets());
    }
    icmpv6::Packet::new_unchecked(buf).fill_checksum(src, ALL_MLDV2_ROUTERS);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().expect("literal")
    }

    #[test]
    fn queries_parse_with_both_response_codes() {
        let mut q = [0u8; 28];
        q[0] = QUERY;
        q[4..6].copy_from_slice(&10_000u16.to_be_bytes());
        assert_eq!(Query::parse(&q), Ok(Query { max_response_ms: 10_000, group: Ipv6Addr::UNSPECIFIED }));
        assert!(Query::parse(&q).map(|q| q.is_general()).unwrap_or(false));
        // RFC 3810 §5.1.3: exp 1, mant 0x0ff -> (0x10ff) << 4.
        q[4..6].copy_from_slice(&0x90ffu16.to_be_bytes());
        q[8..24].copy_from_slice(&a("ff02::1:ff00:2").octets());
        let p = Query::parse(&q).expect("query");
        assert_eq!((p.max_response_ms, p.group, p.is_general()), (0x10ff << 4, a("ff02::1:ff00:2"), false));
        assert_eq!(Query::parse(&q[..23]), Err(Error::Malformed), "short");
        q[0] = REPORT_V2;
        assert_eq!(Query::parse(&q), Err(Error::Malformed), "not a query");
    }

    #[test]
    fn a_report_has_one_record_per_group_and_a_valid_checksum() {
        let src = a("fe80::ff:fe00:2");
        let groups = [a("ff02::1:ff00:2"), a("ff02::1:ff00:3")];
        let mut buf = vec![0u8; report_len(2)];
        emit_report(src, record::CHANGE_TO_EXCLUDE, &groups, &mut buf).expect("fits");
        assert_eq!(buf.len(), 48);
        assert_eq!((buf[0], buf[1], &buf[4..8]), (REPORT_V2, 0, &[0u8, 0, 0, 2][..]));
        assert_eq!(&buf[8..12], &[record::CHANGE_TO_EXCLUDE, 0, 0, 0]);
        assert_eq!(&buf[12..28], &groups[0].octets());
        assert_eq!(&buf[32..48], &groups[1].octets());
        assert!(icmpv6::Packet::new_unchecked(&buf[..]).verify_checksum(src, ALL_MLDV2_ROUTERS));
        assert_eq!(emit_report(src, record::CHANGE_TO_EXCLUDE, &groups, &mut buf[..40]), Err(Error::Malformed));
    }

    #[test]
    fn the_router_alert_header_is_a_valid_hop_by_hop_header() {
        // Next header ICMPv6, length 0 (8 bytes), option 5 length 2 value 0, PadN of 0.
        assert_eq!(HOP_BY_HOP_ROUTER_ALERT.len(), 8);
        assert_eq!((HOP_BY_HOP_ROUTER_ALERT[0], HOP_BY_HOP_ROUTER_ALERT[2]), (next_header::ICMPV6, 5));
    }
}
