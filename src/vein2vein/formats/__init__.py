"""vein2vein.formats."""
