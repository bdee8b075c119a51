"""Re-Mix: learn data-mixture weights for robot datasets and train policies on the mixture."""

__version__ = "0.1.0"
