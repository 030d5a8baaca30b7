"""vein2vein.cli."""
