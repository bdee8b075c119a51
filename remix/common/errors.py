"""User-facing errors.

Every problem a user can fix (a wrong path, a corrupt store, a bad config value) is raised as a
`RemixError` whose message is one line naming the problem and what to do. The CLIs print that line
and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations


class RemixError(Exception):
    """A problem the user can fix; the message says what and how."""


class StoreError(RemixError):
    """An episode store is missing, corrupt or inconsistent."""


class ConfigError(RemixError):
    """A configuration value is missing, unknown or out of range."""


class HardwareError(RemixError):
    """A device SDK is missing or a device cannot be reached."""
