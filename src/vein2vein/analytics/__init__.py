"""vein2vein.analytics."""
