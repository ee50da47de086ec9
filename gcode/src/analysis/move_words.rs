//! A move line's number words by letter, collected without a branch on the letter.

use crate::parse::line::{RawWord, ValueKind};

/// Indices of the axes in positions and move targets (and their slots here).
pub(super) const X: usize = 0;
pub(super) const Y: usize = 1;
pub(super) const Z: usize = 2;
pub(super) const E: usize = 3;

/// Slots of [`Slots`]: the axes, then `F`; every other letter is `OTHER` (no slot).
pub(super) const F: usize = 4;
const OTHER: usize = 5;

/// A move's number words by letter: X, Y, Z, E and F, the last of each (an `F` only if positive).
///
/// Each word is stored in its slot and sets its bit: no branch on its letter (which alternates and
/// mispredicts). The axes' slots are 16 bytes apart ([`SLOT_AT`]): for adjacent ones the compiler
/// reads two axes with one 16-byte load, which the processor cannot forward from the two 8-byte
/// stores that wrote them (a stall per move); apart, each is an 8-byte load of an 8-byte store.
#[derive(Debug)]
pub(super) struct Slots {
    values: [f64; 8],
    /// Bit `slot` is set for each slot a word was stored in.
    pub(super) seen: u32,
}

/// Index in [`Slots::values`] of each slot (eight entries: indexed with a mask, no bounds check).
const SLOT_AT: [usize; 8] = [0, 2, 4, 6, 1, 3, 3, 3];

impl Slots {
    #[inline(always)]
    pub(super) fn new() -> Slots {
        Slots {
            values: [0.0; 8],
            seen: 0,
        }
    }

    /// The number words of a parsed line's arguments.
    #[inline(always)]
    pub(super) fn of(words: &[RawWord]) -> Slots {
        let mut slots = Slots::new();
        for w in words {
            if w.kind == ValueKind::Number {
                slots.add(w.letter, w.value());
            }
        }
        slots
    }

    /// Stores a number word.
    #[inline(always)]
    pub(super) fn add(&mut self, letter: u8, value: f64) {
        let slot = match usize::from(SLOT_OF[usize::from(letter)]) {
            // Only a positive `F` sets the feedrate (a later one wins).
            F if value.is_nan() || value <= 0.0 => OTHER,
            slot => slot,
        };
        self.values[SLOT_AT[slot & 7]] = value;
        self.seen |= 1 << slot;
    }

    /// The value of slot `slot` (meaningful if its bit is set).
    #[inline(always)]
    pub(super) fn get(&self, slot: usize) -> f64 {
        self.values[SLOT_AT[slot & 7]]
    }
}

/// Slot of each letter (either case is upper case by now).
const SLOT_OF: [u8; 256] = {
    let mut table = [OTHER as u8; 256];
    table[b'X' as usize] = X as u8;
    table[b'Y' as usize] = Y as u8;
    table[b'Z' as usize] = Z as u8;
    table[b'E' as usize] = E as u8;
    table[b'F' as usize] = F as u8;
    table
};
