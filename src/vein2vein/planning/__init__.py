"""vein2vein.planning."""
