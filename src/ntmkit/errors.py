"""Errors a user can fix. Each message is one line that names the problem and the fix; the CLI
prints it and exits with status 2, without a traceback."""


class NTMError(ValueError):
    """Base class of every user-fixable error in ntmkit."""


class ConfigError(NTMError):
    """A model or training setting that cannot work."""


class TaskError(NTMError):
    """A task setting or request that cannot work."""


class CheckpointError(NTMError):
    """A checkpoint that is missing, truncated, foreign, or does not match the settings given."""
