//! CuraEngine and PrusaSlicer as a supervised subprocess.
