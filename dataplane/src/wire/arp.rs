//! arp (in progress).
