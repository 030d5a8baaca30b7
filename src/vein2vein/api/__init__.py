"""vein2vein.api."""
