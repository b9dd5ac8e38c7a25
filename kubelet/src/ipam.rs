//! Pod address allocation inside the pod network.

use std::{collections::BTreeSet, net::Ipv4Addr};

/// Hands out pod addresses from a network, skipping the gateway and addresses in use.
///
/// Like CNI's host-local IPAM, it continues after the last address it handed out rather than
/// reusing the lowest free one, so a deleted Pod's address is not at once given to the next.
#[derive(Debug)]
pub struct PodAddressPool {
    gateway: Ipv4Addr,
    first: u32,
    last: u32,
    next: u32,
    in_use: BTreeSet<Ipv4Addr>,
}

impl PodAddressPool {
    /// A pool over `gateway/prefix_len`, excluding the network, broadcast and gateway
    /// addresses, and the first /24 (kept for the host side).
    pub fn new(gateway: Ipv4Addr, prefix_len: u8) -> Self {
        let mask = if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix_len))
        };
        let network = u32::from(gateway) & mask;
        let broadcast = network | !mask;
        let first = if broadcast - network > 512 {
            network + 256 + 1
        } else {
            network + 1
        };
        Self {
            gateway,
            first,
            last: broadcast.saturating_sub(1),
            next: first,
            in_use: BTreeSet::new(),
        }
    }

    /// Reserves a specific address (one a pod already had), if it is free and in the pool.
    pub fn reserve(&mut self, address: Ipv4Addr) -> bool {
        let n = u32::from(address);
        n >= self.first && n <= self.last && address != self.gateway && self.in_use.insert(address)
    }

    /// The next free address after the last one handed out, wrapping around.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let address = (self.next..=self.last)
            .chain(self.first..self.next)
            .map(Ipv4Addr::from)
            .find(|a| *a != self.gateway && !self.in_use.contains(a))?;
        self.in_use.insert(address);
        self.next = if u32::from(address) >= self.last {
            self.first
        } else {
            u32::from(address) + 1
        };
        Some(address)
    }

    /// Returns an address to the pool.
    pub fn release(&mut self, address: Ipv4Addr) {
        self.in_use.remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_past_the_host_block_and_does_not_reuse_at_once() {
        let mut pool = PodAddressPool::new(Ipv4Addr::new(198, 18, 0, 1), 16);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(b, Ipv4Addr::new(198, 18, 1, 2));
        pool.release(a);
        assert_eq!(pool.allocate().unwrap(), Ipv4Addr::new(198, 18, 1, 3));
    }

    #[test]
    fn wraps_around_to_released_addresses() {
        // 192.0.2.0/29: gateway .1, pods .2 to .6.
        let mut pool = PodAddressPool::new(Ipv4Addr::new(192, 0, 2, 1), 29);
        let all: Vec<_> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(all.len(), 5);
        pool.release(all[1]);
        assert_eq!(pool.allocate(), Some(all[1]));
        assert_eq!(pool.allocate(), None);
    }

    #[test]
    fn reserve_refuses_taken_gateway_and_foreign_addresses() {
        let mut pool = PodAddressPool::new(Ipv4Addr::new(198, 18, 0, 1), 16);
        assert!(pool.reserve(Ipv4Addr::new(198, 18, 7, 9)));
        assert!(!pool.reserve(Ipv4Addr::new(198, 18, 7, 9)));
        assert!(!pool.reserve(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!pool.reserve(Ipv4Addr::new(198, 18, 0, 1)));
    }

    #[test]
    fn small_networks_exhaust() {
        let mut pool = PodAddressPool::new(Ipv4Addr::new(192, 0, 2, 1), 30);
        // 192.0.2.0/30: .1 is the gateway, .2 is the only pod address.
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(pool.allocate(), None);
    }
}
