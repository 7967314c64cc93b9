//! The addresses a sweep may touch: CIDR ranges expanded, minus the
//! do-not-scan ranges.
//!
//! Invariants:
//! - A range of more than [`MAX_RANGE_ADDRESSES`] addresses is refused
//!   (IPv4 shorter than /16, IPv6 shorter than /112); IPv6 is swept only for
//!   listed addresses and such small ranges.
//! - An address inside any excluded range never appears in the result, so
//!   it is never sent a packet.
//! - Never swept: an IPv4 range's network and broadcast addresses (prefix
//!   shorter than /31), an IPv6 range's subnet-router anycast address
//!   (all-zero host part, prefix shorter than /127), and unspecified,
//!   multicast and broadcast addresses wherever they come from.
//! - The result is sorted and free of duplicates (overlapping ranges are
//!   swept once).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Cidr;

/// Largest range accepted, in addresses.
pub const MAX_RANGE_ADDRESSES: u128 = 65_536;

/// Why ranges cannot be swept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("range {range} has {size} addresses; at most {max} may be swept at once (split it)", max = MAX_RANGE_ADDRESSES)]
    TooLarge { range: String, size: u128 },
}

/// Number of addresses in `c`.
pub fn range_size(c: &Cidr) -> u128 {
    let bits: u32 = if c.addr.is_ipv4() { 32 } else { 128 };
    let host_bits = bits.saturating_sub(u32::from(c.prefix));
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// Refuses ranges larger than [`MAX_RANGE_ADDRESSES`].
pub fn check_range(c: &Cidr) -> Result<(), TargetError> {
    let size = range_size(c);
    if size > MAX_RANGE_ADDRESSES {
        return Err(TargetError::TooLarge {
            range: c.to_string(),
            size,
        });
    }
    Ok(())
}

fn bits(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

/// Whether `addr` lies in `c` (families must match).
pub fn contains(c: &Cidr, addr: IpAddr) -> bool {
    if c.addr.is_ipv4() != addr.is_ipv4() {
        return false;
    }
    let (net, width) = bits(c.addr);
    let (a, _) = bits(addr);
    let host_bits = width.saturating_sub(u32::from(c.prefix));
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    (a & mask) == (net & mask)
}

/// Whether `addr` is inside one of `exclude`.
pub fn is_excluded(addr: IpAddr, exclude: &[Cidr]) -> bool {
    exclude.iter().any(|c| contains(c, addr))
}

fn never_swept(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v) => v.is_unspecified() || v.is_multicast() || v.is_broadcast(),
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast(),
    }
}

fn from_bits(v4: bool, b: u128) -> IpAddr {
    if v4 {
        // b < 2^32 for IPv4 ranges.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(b).unwrap_or(0)))
    } else {
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

/// The addresses of `ranges` that are not in `exclude`, sorted, each once.
pub fn addresses(ranges: &[Cidr], exclude: &[Cidr]) -> Result<Vec<IpAddr>, TargetError> {
    let mut out = BTreeSet::new();
    for r in ranges {
        check_range(r)?;
        let v4 = r.addr.is_ipv4();
        let (net, _) = bits(r.addr);
        let size = range_size(r);
        let skip_edges = if v4 { r.prefix < 31 } else { r.prefix < 127 };
        for i in 0..size {
            if skip_edges && (i == 0 || (v4 && i == size - 1)) {
                continue;
            }
            let addr = from_bits(v4, net + i);
            if never_swept(addr) || is_excluded(addr, exclude) {
                continue;
            }
            out.insert(addr);
        }
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_slash_24_is_its_254_hosts() {
        let a = addresses(&[c("198.18.7.0/24")], &[]).expect("ok");
        assert_eq!(a.len(), 254);
        assert_eq!(a[0], ip("198.18.7.1"));
        assert_eq!(a[253], ip("198.18.7.254"));
    }

    #[test]
    fn single_addresses_and_point_to_point_ranges_keep_every_address() {
        assert_eq!(
            addresses(&[c("10.0.0.5")], &[]).expect("ok"),
            vec![ip("10.0.0.5")]
        );
        assert_eq!(
            addresses(&[c("10.0.0.4/31")], &[]).expect("ok"),
            vec![ip("10.0.0.4"), ip("10.0.0.5")]
        );
        assert_eq!(addresses(&[c("::1")], &[]).expect("ok"), vec![ip("::1")]);
    }

    #[test]
    fn excluded_addresses_never_appear() {
        let a = addresses(
            &[c("10.1.0.0/22")],
            &[c("10.1.3.0/24"), c("10.1.0.7"), c("fd00::/8")],
        )
        .expect("ok");
        assert!(!a.contains(&ip("10.1.0.7")));
        assert!(!a.iter().any(|x| contains(&c("10.1.3.0/24"), *x)));
        assert_eq!(a.len(), 1022 - 1 - 256 + 1);
        // 10.1.3.255 was the broadcast address anyway; 10.1.2.255 is a host.
        assert!(a.contains(&ip("10.1.2.255")));
    }

    #[test]
    fn ranges_over_65536_addresses_are_refused_and_a_slash_16_is_not() {
        assert!(check_range(&c("10.0.0.0/16")).is_ok());
        assert!(matches!(
            check_range(&c("10.0.0.0/15")),
            Err(TargetError::TooLarge { size: 131_072, .. })
        ));
        assert!(check_range(&c("fd00::/112")).is_ok());
        assert!(check_range(&c("fd00::/111")).is_err());
        assert!(check_range(&c("fd00::/64")).is_err());
        assert!(check_range(&c("0.0.0.0/0")).is_err());
        assert!(check_range(&c("::/0")).is_err());
        assert!(addresses(&[c("10.0.0.0/8")], &[]).is_err());
    }

    #[test]
    fn small_ipv6_ranges_skip_the_anycast_address() {
        let a = addresses(&[c("fd00::/126")], &[]).expect("ok");
        assert_eq!(a, vec![ip("fd00::1"), ip("fd00::2"), ip("fd00::3")]);
    }

    #[test]
    fn overlapping_ranges_are_swept_once_and_families_do_not_mix() {
        let a = addresses(&[c("10.0.0.0/30"), c("10.0.0.0/29")], &[]).expect("ok");
        assert_eq!(a.len(), 6);
        assert!(!contains(&c("::/0"), ip("10.0.0.1")));
        assert!(!is_excluded(ip("10.0.0.1"), &[c("::/0")]));
        assert!(contains(&c("0.0.0.0/0"), ip("10.0.0.1")));
    }

    proptest! {
        #[test]
        fn nothing_excluded_is_ever_swept(
            net in any::<u32>(), prefix in 20u8..=32,
            ex_net in any::<u32>(), ex_prefix in 16u8..=32,
        ) {
            let mask = |p: u8| u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
            let r = Cidr { addr: IpAddr::V4(Ipv4Addr::from(net & mask(prefix))), prefix };
            let ex = Cidr { addr: IpAddr::V4(Ipv4Addr::from(ex_net & mask(ex_prefix))), prefix: ex_prefix };
            let a = addresses(&[r], &[ex]).expect("small range");
            for x in &a {
                prop_assert!(contains(&r, *x));
                prop_assert!(!contains(&ex, *x));
            }
            prop_assert!(a.len() as u128 <= range_size(&r));
        }
    }
}
