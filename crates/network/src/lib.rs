//! Berth's container networking: address management, bridges and veth pairs
//! (netlink), and NAT / port publishing (nftables).
//!
//! The crate knows nothing about containers or state: the engine decides which
//! network a container joins and which address it gets, and calls in here to
//! make the kernel do it.

mod error;
pub mod ipam;
pub mod netlink;
pub mod nft;
pub mod ports;

pub use error::{Error, ErrorKind, Result};
pub use ipnet::Ipv4Net;
