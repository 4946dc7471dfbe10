//! Neighbour discovery (RFC 4861) over Ethernet: router solicitation and advertisement,
//! neighbour solicitation and advertisement, with the source/target link-layer address
//! (RFC 4861 §4.6.1, RFC 2464 §6), prefix information (§4.6.2) and MTU (§4.6.4) options.
//!
//! [`Repr::parse`] takes a whole ICMPv6 message (the checksum is checked by
//! [`icmpv6`](crate::wire::icmpv6)) and does the validation of RFC 4861 §6.1 and §7.1 that
//! needs no IP header: code 0, lengths, a unicast target, and options that are all non-zero
//! in length (a zero-length option invalidates the message, §4.6). The caller checks the
//! rest: hop limit [`HOP_LIMIT`], a link-local source for router advertisements, no source
//! link-layer address option from the unspecified address, S clear in an advertisement to
//! a multicast address. Unknown options are skipped (§4.6), as are options that do not
//! belong to the message.

use std::net::Ipv6Addr;

use crate::wire::ethernet::EthernetAddress;
use crate::wire::icmpv6::message;

/// Why a neighbour discovery message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the message's fixed part, or an option runs past the end.
    #[error("truncated")]
    Truncated,
    /// ICMP code other than 0.
    #[error("code not 0")]
    BadCode,
    /// An option of length zero (RFC 4861 §4.6).
    #[error("zero-length option")]
    ZeroLengthOption,
    /// A known option with the wrong length (a link-layer address that is not Ethernet, a
    /// prefix information or MTU option of another size).
    #[error("bad option length")]
    BadOption,
    /// A multicast target address (RFC 4861 §7.1.1, §7.1.2).
    #[error("multicast target")]
    MulticastTarget,
    /// Not a neighbour discovery message (when parsing).
    #[error("not a neighbour discovery message")]
    NotNdp,
}

/// Hop limit of every neighbour discovery message, sent and accepted (RFC 4861 §6.1, §7.1:
/// a lower one proves the message crossed a router).
pub const HOP_LIMIT: u8 = 255;
/// Most prefix information options of a router advertisement kept by [`Repr::parse`]; more
/// are skipped.
pub const MAX_PREFIXES: usize = 4;

/// Option types (RFC 4861 §4.6).
pub mod option {
    /// Source link-layer address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LLADDR: u8 = 2;
    /// Prefix information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
}

/// Fixed lengths of the messages, ICMPv6 header included (RFC 4861 §4.1 to §4.4).
const RS_LEN: usize = 8;
const RA_LEN: usize = 16;
const NS_LEN: usize = 24;
const NA_LEN: usize = 24;

/// Router advertisement flags (RFC 4861 §4.2).
const RA_MANAGED: u8 = 0x80;
const RA_OTHER: u8 = 0x40;
/// Neighbour advertisement flags (RFC 4861 §4.4).
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
/// Prefix information flags (RFC 4861 §4.6.2).
const PI_ON_LINK: u8 = 0x80;
const PI_AUTONOMOUS: u8 = 0x40;

/// A prefix information option (RFC 4861 §4.6.2). Lifetimes in seconds, 0xffffffff is
/// infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// Number of leading bits of `prefix` that are valid (0 to 128).
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: the prefix can be used for stateless address autoconfiguration (RFC 4862).
    pub autonomous: bool,
    /// Valid lifetime.
    pub valid_lifetime: u32,
    /// Preferred lifetime.
    pub preferred_lifetime: u32,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

/// The prefixes of a router advertisement, in message order, at most [`MAX_PREFIXES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefixes {
    items: [Option<PrefixInfo>; MAX_PREFIXES],
}

impl Prefixes {
    /// Append `p`; `false` (and nothing kept) when full.
    pub fn push(&mut self, p: PrefixInfo) -> bool {
        match self.items.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(p);
                true
            }
            None => false,
        }
    }

    /// The prefixes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &PrefixInfo> {
        self.items.iter().flatten()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.items[0].is_none()
    }
}

/// A neighbour discovery message in high-level form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// Router solicitation (type 133).
    RouterSolicit {
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Router advertisement (type 134).
    RouterAdvert {
        /// Hop limit to use, 0 for unspecified.
        hop_limit: u8,
        /// M: addresses are available from DHCPv6.
        managed: bool,
        /// O: other configuration is available from DHCPv6.
        other_config: bool,
        /// Lifetime as default router in seconds, 0 for not a default router.
        router_lifetime: u16,
        /// Reachable time in milliseconds, 0 for unspecified.
        reachable_time: u32,
        /// Retransmission timer in milliseconds, 0 for unspecified.
        retrans_time: u32,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
        /// MTU option.
        mtu: Option<u32>,
        /// Prefix information options.
        prefixes: Prefixes,
    },
    /// Neighbour solicitation (type 135).
    NeighborSolicit {
        /// The address whose link-layer address is asked for.
        target_addr: Ipv6Addr,
        /// Source link-layer address option (absent in duplicate address detection).
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbour advertisement (type 136).
    NeighborAdvert {
        /// R: the sender is a router.
        router: bool,
        /// S: sent in answer to a solicitation.
        solicited: bool,
        /// O: override an existing cache entry.
        override_: bool,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

/// The options of a message, those we understand.
#[derive(Default)]
struct Options {
    source_lladdr: Option<EthernetAddress>,
    target_lladdr: Option<EthernetAddress>,
    mtu: Option<u32>,
    prefixes: Prefixes,
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn addr_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let a: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(a))
}

/// Walk the options (RFC 4861 §4.6): type, length in units of 8 octets, data.
fn parse_options(mut rest: &[u8]) -> Result<Options, Error> {
    let mut out = Options::default();
    while !rest.is_empty() {
        let (&ty, &len) = match rest {
            [ty, len, ..] => (ty, len),
            _ => return Err(Error::Truncated),
        };
        if len == 0 {
            return Err(Error::ZeroLengthOption);
        }
        let opt = rest.get(..usize::from(len) * 8).ok_or(Error::Truncated)?;
        rest = rest.get(opt.len()..).unwrap_or(&[]);
        match ty {
            option::SOURCE_LLADDR | option::TARGET_LLADDR => {
                // RFC 2464 §6: one unit, the 6-byte MAC after type and length.
                let mac = if len == 1 { opt.get(2..8).and_then(EthernetAddress::from_bytes) } else { None };
                let mac = mac.ok_or(Error::BadOption)?;
                if ty == option::SOURCE_LLADDR {
                    out.source_lladdr = Some(mac);
                } else {
                    out.target_lladdr = Some(mac);
                }
            }
            option::MTU => {
                if len != 1 {
                    return Err(Error::BadOption);
                }
                out.mtu = Some(be32(opt, 4));
            }
            option::PREFIX_INFO => {
                if len != 4 {
                    return Err(Error::BadOption);
                }
                let (&plen, &flags) = match opt {
                    [_, _, plen, flags, ..] => (plen, flags),
                    _ => return Err(Error::BadOption),
                };
                if plen > 128 {
                    return Err(Error::BadOption);
                }
                let prefix = addr_at(opt, 16).ok_or(Error::BadOption)?;
                // Extras beyond MAX_PREFIXES are skipped, like unknown options.
                let _ = out.prefixes.push(PrefixInfo {
                    prefix_len: plen,
                    on_link: flags & PI_ON_LINK != 0,
                    autonomous: flags & PI_AUTONOMOUS != 0,
                    valid_lifetime: be32(opt, 4),
                    preferred_lifetime: be32(opt, 8),
                    prefix,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

impl Repr {
    /// Parse a whole ICMPv6 message of type 133 to 136 (see the module documentation for
    /// what is validated here and what is left to the caller).
    pub fn parse(msg: &[u8]) -> Result<Repr, Error> {
        let (&ty, &code) = match msg {
            [ty, code, ..] => (ty, code),
            _ => return Err(Error::Truncated),
        };
        let fixed = match ty {
            message::ROUTER_SOLICIT => RS_LEN,
            message::ROUTER_ADVERT => RA_LEN,
            message::NEIGHBOR_SOLICIT => NS_LEN,
            message::NEIGHBOR_ADVERT => NA_LEN,
            _ => return Err(Error::NotNdp),
        };
        if code != 0 {
            return Err(Error::BadCode);
        }
        let head = msg.get(..fixed).ok_or(Error::Truncated)?;
        let opts = parse_options(msg.get(fixed..).unwrap_or(&[]))?;
        let target = || {
            let t = addr_at(head, 8).ok_or(Error::Truncated)?;
            if t.is_multicast() {
                Err(Error::MulticastTarget)
            } else {
                Ok(t)
            }
        };
        let byte = |at: usize| head.get(at).copied().unwrap_or(0);
        Ok(match ty {
            message::ROUTER_SOLICIT => Repr::RouterSolicit { lladdr: opts.source_lladdr },
            message::ROUTER_ADVERT => Repr::RouterAdvert {
                hop_limit: byte(4),
                managed: byte(5) & RA_MANAGED != 0,
                other_config: byte(5) & RA_OTHER != 0,
                router_lifetime: u16::from_be_bytes([byte(6), byte(7)]),
                reachable_time: be32(head, 8),
                retrans_time: be32(head, 12),
                lladdr: opts.source_lladdr,
                mtu: opts.mtu,
                prefixes: opts.prefixes,
            },
            message::NEIGHBOR_SOLICIT => Repr::NeighborSolicit { target_addr: target()?, lladdr: opts.source_lladdr },
            _ => Repr::NeighborAdvert {
                router: byte(4) & NA_ROUTER != 0,
                solicited: byte(4) & NA_SOLICITED != 0,
                override_: byte(4) & NA_OVERRIDE != 0,
                target_addr: target()?,
                lladdr: opts.target_lladdr,
            },
        })
    }

    /// The ICMPv6 message type.
    pub fn msg_type(&self) -> u8 {
        match self {
            Repr::RouterSolicit { .. } => message::ROUTER_SOLICIT,
            Repr::RouterAdvert { .. } => message::ROUTER_ADVERT,
            Repr::NeighborSolicit { .. } => message::NEIGHBOR_SOLICIT,
            Repr::NeighborAdvert { .. } => message::NEIGHBOR_ADVERT,
        }
    }

    /// Length of the whole ICMPv6 message, options included.
    pub fn buffer_len(&self) -> usize {
        let lla = |l: &Option<EthernetAddress>| if l.is_some() { 8 } else { 0 };
        match self {
            Repr::RouterSolicit { lladdr } => RS_LEN + lla(lladdr),
            Repr::RouterAdvert { lladdr, mtu, prefixes, .. } => {
                RA_LEN + lla(lladdr) + if mtu.is_some() { 8 } else { 0 } + 32 * prefixes.len()
            }
            Repr::NeighborSolicit { lladdr, .. } => NS_LEN + lla(lladdr),
            Repr::NeighborAdvert { lladdr, .. } => NA_LEN + lla(lladdr),
        }
    }

    /// Write the whole message into the first [`Repr::buffer_len`] bytes of `msg`, checksum
    /// zero (the ICMPv6 layer fills it: [`icmpv6::Repr::emit`](crate::wire::icmpv6::Repr::emit)).
    pub fn emit(&self, msg: &mut [u8]) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf = msg.get_mut(..len).ok_or(Error::Truncated)?;
        buf.fill(0);
        buf[0] = self.msg_type();
        let mut at = match *self {
            Repr::RouterSolicit { .. } => RS_LEN,
            Repr::RouterAdvert {
                hop_limit, managed, other_config, router_lifetime, reachable_time, retrans_time, ..
            } => {
                buf[4] = hop_limit;
                buf[5] = if managed { RA_MANAGED } else { 0 } | if other_config { RA_OTHER } else { 0 };
                buf[6..8].copy_from_slice(&router_lifetime.to_be_bytes());
                buf[8..12].copy_from_slice(&reachable_time.to_be_bytes());
                buf[12..16].copy_from_slice(&retrans_time.to_be_bytes());
                RA_LEN
            }
            Repr::NeighborSolicit { target_addr, .. } => {
                buf[8..24].copy_from_slice(&target_addr.octets());
                NS_LEN
            }
            Repr::NeighborAdvert { router, solicited, override_, target_addr, .. } => {
                buf[4] = if router { NA_ROUTER } else { 0 }
                    | if solicited { NA_SOLICITED } else { 0 }
                    | if override_ { NA_OVERRIDE } else { 0 };
                buf[8..24].copy_from_slice(&target_addr.octets());
                NA_LEN
            }
        };
        let (lladdr, lla_type) = match self {
            Repr::NeighborAdvert { lladdr, .. } => (lladdr, option::TARGET_LLADDR),
            Repr::RouterSolicit { lladdr } | Repr::RouterAdvert { lladdr, .. } | Repr::NeighborSolicit { lladdr, .. } => {
                (lladdr, option::SOURCE_LLADDR)
            }
        };
        if let Some(mac) = lladdr {
            buf[at] = lla_type;
            buf[at + 1] = 1;
            buf[at + 2..at + 8].copy_from_slice(&mac.0);
            at += 8;
        }
        if let Repr::RouterAdvert { mtu, prefixes, .. } = self {
            if let Some(mtu) = mtu {
                buf[at] = option::MTU;
                buf[at + 1] = 1;
                buf[at + 4..at + 8].copy_from_slice(&mtu.to_be_bytes());
                at += 8;
            }
            for p in prefixes.iter() {
                let o = &mut buf[at..at + 32];
                o[0] = option::PREFIX_INFO;
                o[1] = 4;
                o[2] = p.prefix_len;
                o[3] = if p.on_link { PI_ON_LINK } else { 0 } | if p.autonomous { PI_AUTONOMOUS } else { 0 };
                o[4..8].copy_from_slice(&p.valid_lifetime.to_be_bytes());
                o[8..12].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
                o[16..32].copy_from_slice(&p.prefix.octets());
                at += 32;
            }
        }
        debug_assert_eq!(at, len);
        Ok(())
    }
}

#[cfg(test)]
#[path = "ndp_tests.rs"]
mod tests;
