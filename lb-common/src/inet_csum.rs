//! The Internet checksum (RFC 1071), over 16-bit words read natively from packet bytes.
//!
//! One's-complement addition does not care about byte order, so words are summed as they
//! lie in the packet and the result is stored the same way, with no swapping on either side.

/// Adds `words` to a running `sum`.
pub fn add_words(mut sum: u32, words: &[u16]) -> u32 {
    let mut i = 0;
    while i < words.len() {
        sum += u32::from(words[i]);
        i += 1;
    }
    sum
}

/// The checksum field's value for a running `sum`: folded to 16 bits and complemented.
pub const fn finish(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
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
}
