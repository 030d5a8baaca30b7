"""vein2vein.services."""
