"""The study: its data (scenarios), its cells (design), how they are trained in chunks,
the protocol (tuning and reporting), the statistics, what it found, and its report."""
