"""vein2vein.telemetry."""
