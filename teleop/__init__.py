"""Teleoperation and demo collection: Quest (ADB logcat) and keyboard teleop, and `remix-collect`."""
