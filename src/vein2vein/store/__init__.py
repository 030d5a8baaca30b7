"""vein2vein.store."""
