"""WBC Desktop: classify white blood cells in microscope images and sign out a differential."""

__version__ = "0.1.0"
