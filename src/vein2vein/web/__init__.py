"""vein2vein.web."""
