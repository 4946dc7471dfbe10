//! Ethernet II frames (IEEE 802.3 with an EtherType): [`EthernetAddress`], [`EtherType`],
//! the zero-copy [`Frame`] view and [`EthernetRepr`].

use core::fmt;

use super::{get_u16, put_u16, Error};

/// Length of the Ethernet II header (destination, source, EtherType).
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag (tag control and the inner EtherType; the outer EtherType
/// field holds 0x8100).
pub const VLAN_TAG_LEN: usize = 4;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// The all-zero address (ARP "unknown" target hardware address, RFC 5227 §2.1.1).
    pub const UNSPECIFIED: EthernetAddress = EthernetAddress([0; 6]);

    /// Builds an address from a 6-byte slice; `None` for any other length.
    pub fn from_bytes(b: &[u8]) -> Option<EthernetAddress> {
        let a: [u8; 6] = b.try_into().ok()?;
        Some(EthernetAddress(a))
    }

    /// The raw octets.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The I/G bit (least significant bit of the first octet) is set; includes broadcast.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// A unicast address other than all zeros.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::UNSPECIFIED
    }

    /// The U/L bit is set (locally administered address).
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// The EtherType field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x86dd (recognised so that it can be counted, not handled).
    Ipv6,
    /// 0x8100 802.1Q VLAN tag (not handled).
    Vlan,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

packet_view!(Frame, Error);

impl<T: AsRef<[u8]>> Frame<T> {
    /// [`Error::Truncated`] if the buffer is shorter than the header.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        EthernetAddress(a)
    }

    /// Source address.
    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        EthernetAddress(a)
    }

    /// EtherType.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The length of the link header with at most one 802.1Q tag (IEEE 802.1Q §9.3: the
    /// tag's EtherType 0x8100, two bytes of tag control, then the EtherType of the
    /// payload), and that EtherType. [`Error::Truncated`] if the buffer ends inside it.
    pub fn link_header(&self) -> Result<(usize, EtherType), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        match self.ethertype() {
            EtherType::Vlan => {
                let end = HEADER_LEN + VLAN_TAG_LEN;
                if data.len() < end {
                    return Err(Error::Truncated);
                }
                Ok((end, EtherType::from(get_u16(data, end - 2))))
            }
            other => Ok((HEADER_LEN, other)),
        }
    }

    /// Everything after the header (may include trailing Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, t: EtherType) {
        put_u16(self.buffer.as_mut(), field::ETHERTYPE, t.into());
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// High-level representation of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<EthernetRepr, Error> {
        frame.check_len()?;
        Ok(EthernetRepr { src_addr: frame.src_addr(), dst_addr: frame.dst_addr(), ethertype: frame.ethertype() })
    }

    /// Header length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `frame`; [`Error::Truncated`] if the buffer is too short.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) -> Result<(), Error> {
        frame.check_len()?;
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }

    /// The header as a fixed array, for prepending to a segment built elsewhere.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[field::DST].copy_from_slice(&self.dst_addr.0);
        h[field::SRC].copy_from_slice(&self.src_addr.0);
        put_u16(&mut h, field::ETHERTYPE, self.ethertype.into());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0xaa,
        0xbb, 0xcc, 0xdd,
    ];

    #[test]
    fn parse_known_frame() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(f.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn truncated_rejected() {
        assert_eq!(Frame::new_checked(&FRAME[..13]).unwrap_err(), Error::Truncated);
        assert_eq!(Frame::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        assert!(Frame::new_checked(&FRAME[..14]).is_ok());
    }

    #[test]
    fn construct() {
        let repr = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        };
        let mut buf = [0xa5u8; 18];
        repr.emit(&mut Frame::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(&buf[..14], &FRAME[..14]);
        assert_eq!(repr.to_bytes(), FRAME[..14]);
        let back = EthernetRepr::parse(&Frame::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(back, repr);
        let mut short = [0u8; 10];
        assert_eq!(repr.emit(&mut Frame::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn address_classes_and_display() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(EthernetAddress([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(EthernetAddress([2, 0, 0, 0, 0, 1]).is_unicast());
        assert!(EthernetAddress([2, 0, 0, 0, 0, 1]).is_local());
        assert!(!EthernetAddress::UNSPECIFIED.is_unicast());
        assert_eq!(EthernetAddress([0xde, 0xad, 0xbe, 0xef, 0, 0x1]).to_string(), "de:ad:be:ef:00:01");
        assert_eq!(EthernetAddress::from_bytes(&[1, 2, 3]), None);
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
        assert_eq!(u16::from(EtherType::Unknown(0x1234)), 0x1234);
    }

    proptest! {
        #[test]
        fn new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = Frame::new_checked(&data[..]) {
                let _ = EthernetRepr::parse(&f);
                prop_assert_eq!(f.payload().len(), data.len() - HEADER_LEN);
            }
        }
    }
}
