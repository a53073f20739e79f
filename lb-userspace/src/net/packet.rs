//! Whole Ethernet frames out of one interface, for what the kernel would not send itself
//! (gratuitous ARP for an address it may not hold yet).

use std::{io, mem::size_of};

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

/// An `AF_PACKET` socket that sends frames as given, link-layer header included. It was
/// opened with protocol 0, so the kernel queues nothing to it: it only sends.
pub struct PacketSocket {
    sock: Socket,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a non-blocking socket sending out of interface `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)?;
        sock.set_nonblocking(true)?;
        Ok(Self { sock, ifindex })
    }

    /// Sends `frame`, an Ethernet frame from its destination address on.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let Some(header) = frame.first_chunk::<14>() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {}-byte frame has no Ethernet header", frame.len()),
            ));
        };
        let to = link_address(
            self.ifindex,
            [header[12], header[13]],
            std::array::from_fn(|i| header[i]),
        )?;
        self.sock.send_to(frame, &to).map(drop)
    }
}

/// The `sockaddr_ll` a frame goes out to: the interface, the frame's EtherType (as it
/// appears in the frame, network order) and its destination MAC.
fn link_address(ifindex: u32, ethertype: [u8; 2], dst: [u8; 6]) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index too large"))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_storage` is larger than `sockaddr_ll` and at least as aligned, and an
    // all-zero `sockaddr_ll` is a valid value for every field set below.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = u16::from_ne_bytes(ethertype);
    ll.sll_ifindex = ifindex;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&dst);
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` of family AF_PACKET, and `len`
    // is its size.
    Ok(unsafe { SockAddr::new(storage, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_the_frames_destination_and_ethertype() {
        let to = link_address(7, [0x08, 0x06], [0xff; 6]).unwrap();
        assert_eq!(to.family(), libc::AF_PACKET as libc::sa_family_t);
        assert_eq!(to.len() as usize, size_of::<libc::sockaddr_ll>());
        // SAFETY: `link_address` wrote a `sockaddr_ll` there.
        let ll = unsafe { &*to.as_ptr().cast::<libc::sockaddr_ll>() };
        assert_eq!(u16::from_be(ll.sll_protocol), 0x0806);
        assert_eq!((ll.sll_ifindex, ll.sll_halen), (7, 6));
        assert_eq!(ll.sll_addr[..6], [0xff; 6]);
    }
}
