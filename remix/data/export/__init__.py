"""Writers from the episode store to other projects' formats (LeRobot v3.0)."""
