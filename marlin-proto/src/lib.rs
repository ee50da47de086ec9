//! Host side of the Marlin serial protocol, as a sans-IO state machine.
