"""The one error a workload raises when its configuration cannot work."""


class WorkloadConfigError(Exception):
    """Bad configuration: `serve` prints the message on one line and exits non-zero."""
