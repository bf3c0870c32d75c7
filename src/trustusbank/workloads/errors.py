"""The one error a workload raises when its configuration cannot work."""

from trustusbank.errors import ConfigError


class WorkloadConfigError(ConfigError):
    """Bad configuration: `serve` prints the message on one line and exits non-zero."""
