//! The RepRap/Marlin line checksum.

/// XOR of all bytes: the checksum RepRap-family firmware (Marlin, Prusa, RepRapFirmware) expects after
/// `*` on a line sent with a line number, computed over every byte before the `*`.
///
/// ```
/// use easyprint_gcode::checksum;
/// assert_eq!(checksum(b"N1 M110 N1"), 125);
/// assert_eq!(checksum(b""), 0);
/// ```
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, &b| acc ^ b)
}
