"""The one error the plugin's commands raise: a message for the user, and the exit code."""

from __future__ import annotations


class PluginError(Exception):
    """Something the user must hear about, in one line, without a traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
