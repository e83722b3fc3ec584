//! This host's interface addresses, for the egress rule that keeps pod instances off the
//! agent's own ports: a socket listening on `0.0.0.0` is reachable on every one of them.
//! Written on libc's `getifaddrs` because it is one call and no crate in the tree offers it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The addresses of this host's interfaces when the agent starts (empty if they cannot be read).
pub fn local_addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that freeifaddrs releases below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        tracing::warn!("cannot list this host's interfaces: {}", std::io::Error::last_os_error());
        return Vec::new();
    }
    let mut addresses = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
            let address = unsafe {
                match i32::from((*entry.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(entry.ifa_addr as *const libc::sockaddr_in);
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                        Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
                    }
                    _ => None,
                }
            };
            addresses.extend(address.filter(|a| !addresses.contains(a)));
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    addresses
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_among_the_local_addresses() {
        let addresses = super::local_addresses();
        assert!(addresses.contains(&"127.0.0.1".parse().unwrap()), "{addresses:?}");
    }
}
