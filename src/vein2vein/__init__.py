"""vein2vein: an open platform that runs cell and gene therapy manufacturing, vein to vein."""

__version__ = "0.1.0"
