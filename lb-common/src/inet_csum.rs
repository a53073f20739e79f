//! The Internet checksum (RFC 1071), over 16-bit words read natively from packet bytes, and
//! its incremental update when fields change (RFC 1624).
//!
//! One's-complement addition does not care about byte order, so words are summed as they
//! lie in the packet and the result is stored the same way, with no swapping on either side.

use crate::{Addr, Family};

/// Adds `words` to a running `sum`.
pub fn add_words(mut sum: u32, words: &[u16]) -> u32 {
    let mut i = 0;
    while i < words.len() {
        sum += u32::from(words[i]);
        i += 1;
    }
    sum
}

/// Adds `bytes` to a running `sum`, as words read natively like [`add_words`]; an odd last
/// byte counts as a word padded with a zero byte (RFC 1071). For messages built in byte
/// buffers (the agent's VRRP adverts and ICMP echoes), of any length: the sum is folded as
/// it goes, so it cannot overflow.
pub fn add_bytes(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum = fold(sum) + u32::from(u16::from_ne_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum = fold(sum) + u32::from(u16::from_ne_bytes([*last, 0]));
    }
    sum
}

/// The checksum field's value for `bytes` alone, to be stored with `to_ne_bytes`; a
/// message that carries its own correct checksum gives 0.
pub fn checksum(bytes: &[u8]) -> u16 {
    finish(add_bytes(0, bytes))
}

/// The checksum field's value for a running `sum`: folded to 16 bits and complemented.
pub const fn finish(sum: u32) -> u16 {
    !(fold(sum) as u16)
}

/// Folds carries back into the low 16 bits; twice covers any sum of two 17-bit values.
const fn fold(sum: u32) -> u32 {
    let sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

/// The change a set of rewritten fields makes to a checksum, for updating it without
/// summing the packet again: the sum of `~old + new` over their 16-bit words (RFC 1624,
/// equation 3), words read as they lie in the packet like everything here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u32);

impl Delta {
    pub const fn new() -> Self {
        Self(0)
    }

    /// A 16-bit field changes from `old` to `new`.
    pub const fn word16(self, old: u16, new: u16) -> Self {
        Self(fold(self.0 + (!old) as u32 + new as u32))
    }

    /// A 32-bit field (an IPv4 address) changes.
    pub const fn word32(self, old: u32, new: u32) -> Self {
        self.word16(old as u16, new as u16)
            .word16((old >> 16) as u16, (new >> 16) as u16)
    }

    /// An address of `family` changes; only the words the family uses count.
    pub fn addr(self, old: &Addr, new: &Addr, family: Family) -> Self {
        match family {
            Family::V4 => self.word32(old.0[0], new.0[0]),
            Family::V6 => self
                .word32(old.0[0], new.0[0])
                .word32(old.0[1], new.0[1])
                .word32(old.0[2], new.0[2])
                .word32(old.0[3], new.0[3]),
        }
    }

    /// Both sets of changes: for a checksum that covers fields `other` was made for too
    /// (an ICMP error's checksum covers the headers it quotes, and their checksums).
    pub const fn plus(self, other: Delta) -> Self {
        Self(fold(self.0 + other.0))
    }

    /// The checksum field `check` after the changes.
    pub const fn apply(self, check: u16) -> u16 {
        finish((!check) as u32 + self.0)
    }

    /// A UDP checksum after the changes: zero means "none" over IPv4 and stays zero, and a
    /// computed zero is sent as all ones (RFC 768).
    pub const fn apply_udp(self, check: u16) -> u16 {
        if check == 0 {
            return 0;
        }
        match self.apply(check) {
            0 => 0xffff,
            sum => sum,
        }
    }
}

/// Words of `bytes` as a packet carries them.
#[cfg(test)]
pub(crate) fn words(bytes: &[u8]) -> std::vec::Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_ne_bytes([c[0], c[1]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_ipv4_header() {
        // 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7 (a classic example).
        let header = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        let check = finish(add_words(0, &words(&header)));
        assert_eq!(check.to_ne_bytes(), [0xb8, 0x61]);
    }

    #[test]
    fn a_message_with_its_checksum_sums_to_zero() {
        let mut message = [3u8, 4, 0, 0, 0, 0, 0x05, 0xc8, 0x45, 0, 0x12, 0x34];
        let check = finish(add_words(0, &words(&message)));
        message[2..4].copy_from_slice(&check.to_ne_bytes());
        assert_eq!(finish(add_words(0, &words(&message))), 0);
    }

    #[test]
    fn carries_fold_back_in() {
        assert_eq!(finish(add_words(0, &[0xffff, 0xffff, 0x0002])), !0x0002);
    }

    #[test]
    fn bytes_sum_like_their_words_and_pad_an_odd_end() {
        let header = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        assert_eq!(checksum(&header).to_ne_bytes(), [0xb8, 0x61]);
        assert_eq!(
            finish(add_bytes(add_bytes(0, &header[..8]), &header[8..])),
            checksum(&header),
            "a sum may be built in pieces of even length"
        );
        // RFC 1071's padding: an odd last byte is followed by a zero byte.
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0])
        );
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn long_messages_do_not_overflow_the_sum() {
        // 128 KiB of 0xffff words would overflow an unfolded 32-bit sum.
        assert_eq!(checksum(&[0xff; 128 * 1024 + 2]), 0);
    }
}

#[cfg(test)]
mod incremental_tests {
    use super::*;

    /// The Internet checksum of `bytes` (of even length), computed in full.
    fn full(bytes: &[u8]) -> u16 {
        finish(add_words(0, &words(bytes)))
    }

    fn raw16(bytes: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([bytes[at], bytes[at + 1]])
    }

    fn raw32(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// An IPv4 header (checksum at 10) whose destination (16..20) is rewritten.
    #[test]
    fn ipv4_destination_rewrite_matches_a_full_sum() {
        let mut header = [
            0x45, 0, 0, 60, 0x1c, 0x46, 0x40, 0, 0x40, 6, 0, 0, 198, 51, 100, 7, 203, 0, 113, 10,
        ];
        let check = full(&header);
        header[10..12].copy_from_slice(&check.to_ne_bytes());
        assert_eq!(full(&header), 0);
        for new_dst in [
            [192, 0, 2, 11],
            [255, 255, 255, 255],
            [0, 0, 0, 0],
            [1, 2, 3, 4],
        ] {
            let mut rewritten = header;
            let old = raw32(&header, 16);
            rewritten[16..20].copy_from_slice(&new_dst);
            let new = raw32(&rewritten, 16);
            let updated = Delta::new().word32(old, new).apply(raw16(&header, 10));
            rewritten[10..12].copy_from_slice(&updated.to_ne_bytes());
            assert_eq!(full(&rewritten), 0, "to {new_dst:?}");
        }
    }

    /// A port and an address change together, as NAT rewrites a TCP segment.
    #[test]
    fn combined_changes_match_a_full_sum() {
        let mut segment: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37)).collect();
        segment[16] = 0;
        segment[17] = 0;
        let check = full(&segment);
        segment[16..18].copy_from_slice(&check.to_ne_bytes());
        let mut rewritten = segment.clone();
        rewritten[2..4].copy_from_slice(&8080u16.to_be_bytes());
        rewritten[20..24].copy_from_slice(&[192, 0, 2, 11]);
        let updated = Delta::new()
            .word16(raw16(&segment, 2), raw16(&rewritten, 2))
            .word32(raw32(&segment, 20), raw32(&rewritten, 20))
            .apply(raw16(&segment, 16));
        rewritten[16..18].copy_from_slice(&updated.to_ne_bytes());
        assert_eq!(full(&rewritten), 0);
    }

    #[test]
    fn ipv6_addresses_change_all_four_words() {
        let old = Addr([0x0db8_0120, 0, 0, 0x0100_0000]);
        let new = Addr([0x0db8_0120, 0, 0x1234_5678, 0x0b00_0000]);
        let mut bytes = [0u8; 34];
        for (i, word) in old.0.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        bytes[16] = 0x11;
        let check = full(&bytes);
        bytes[32..34].copy_from_slice(&check.to_ne_bytes());
        for (i, word) in new.0.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        let updated = Delta::new().addr(&old, &new, Family::V6).apply(check);
        bytes[32..34].copy_from_slice(&updated.to_ne_bytes());
        assert_eq!(full(&bytes), 0);
    }

    #[test]
    fn deltas_add_up_like_one_set_of_changes() {
        let (a, b) = (
            Delta::new().word16(1, 0x8000),
            Delta::new().word32(0xdead_beef, 7),
        );
        let both = Delta::new().word16(1, 0x8000).word32(0xdead_beef, 7);
        assert_eq!(a.plus(b).apply(0x1234), both.apply(0x1234));
    }

    #[test]
    fn no_change_keeps_the_checksum() {
        assert_eq!(Delta::new().word32(7, 7).apply(0x1234), 0x1234);
        assert_eq!(Delta::new().apply(0xbeef), 0xbeef);
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        assert_eq!(Delta::new().word16(1, 2).apply_udp(0), 0);
    }

    #[test]
    fn udp_checksum_that_sums_to_zero_is_sent_as_all_ones() {
        // ~(~0x0001 + ~0 + 1) = ~0xffff = 0.
        let check = 0x0001;
        let delta = Delta::new().word16(0, 1);
        assert_eq!(delta.apply(check), 0);
        assert_eq!(delta.apply_udp(check), 0xffff);
    }
}
