//! Where the simulated world's hosts live: every server's address
//! ([`server_addr`]), every clerk's ([`clerk_addr`]), and the short names
//! traces give them ([`host_name`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The port every server listens on.
pub const SERVER_PORT: u16 = 7000;

/// Address of server `i`.
pub fn server_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), SERVER_PORT)
}

/// Address of the `k`-th clerk's node.
pub fn clerk_addr(k: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1 + (k / 250) as u8, 0, (k % 250) as u8 + 1)), 9000)
}

/// A host's name in traces: `s2` for server 2 (see [`server_addr`]), `c4`
/// for clerk 4 (see [`clerk_addr`]), else its address.
pub fn host_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => match v4.octets() {
            [10, 0, 0, d] if d > 0 => format!("s{}", d - 1),
            [10, c, 0, d] if c >= 1 && d > 0 => format!("c{}", (c as usize - 1) * 250 + d as usize - 1),
            _ => ip.to_string(),
        },
        _ => ip.to_string(),
    }
}
