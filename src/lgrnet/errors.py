"""Errors a user can act on. The command line prints them as one line, without a traceback."""


class UserError(Exception):
    """Bad input or usage: the message names the file or argument and the problem."""


class InputError(UserError):
    """An input file or folder cannot be used (missing, unreadable, wrong kind)."""


class InputWarning(UserWarning):
    """An input that works but gives doubtful results (tiny or distorted frames, unscored files).
    The command line prints it as one line: ``lgrnet COMMAND: warning: ...``."""
