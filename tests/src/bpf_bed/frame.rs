//! Frames for the fixtures and the benchmark, built by etherparse independently of the
//! program under test, checksums computed in full: a frame the program rewrote matches one
//! built here only if its incremental checksum updates are right.

use std::net::{IpAddr, SocketAddr};

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep, TcpHeader};

/// A frame's source and destination MACs.
pub type Macs = ([u8; 6], [u8; 6]);

/// Serialises a finished etherparse builder.
pub fn bytes(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::new();
    write(&mut frame);
    frame
}

/// A frame from `from` to `to` carrying an IP packet from `src` to `dst` (hop limit 64).
pub fn ip((from, to): Macs, src: IpAddr, dst: IpAddr) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(from, to);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => eth.ipv4(src.octets(), dst.octets(), 64),
        (IpAddr::V6(src), IpAddr::V6(dst)) => eth.ipv6(src.octets(), dst.octets(), 64),
        _ => panic!("{src} and {dst} are of different families"),
    }
}

/// A TCP segment from `src` to `dst` (sequence number 1000, window 64240), its flags still
/// to set.
pub fn tcp(
    macs: Macs,
    src: impl Into<SocketAddr>,
    dst: impl Into<SocketAddr>,
) -> PacketBuilderStep<TcpHeader> {
    let (src, dst) = (src.into(), dst.into());
    ip(macs, src.ip(), dst.ip()).tcp(src.port(), dst.port(), 1000, 64240)
}

/// A TCP SYN from `src` to `dst`, without payload.
pub fn syn(macs: Macs, src: impl Into<SocketAddr>, dst: impl Into<SocketAddr>) -> Vec<u8> {
    bytes(|out| tcp(macs, src, dst).syn().write(out, &[]).unwrap())
}

/// A UDP datagram from `src` to `dst` carrying `query`.
pub fn udp(macs: Macs, src: impl Into<SocketAddr>, dst: impl Into<SocketAddr>) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    bytes(|out| {
        ip(macs, src.ip(), dst.ip())
            .udp(src.port(), dst.port())
            .write(out, b"query")
            .unwrap()
    })
}

/// The IP packet in a frame.
pub fn ip_packet(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// Where a frame was sent: its destination MAC.
pub fn dst_mac(frame: &[u8]) -> [u8; 6] {
    frame[..6].try_into().unwrap()
}
