"""trustusbank: the agentic-DORA reference pattern, runnable on one machine."""

__version__ = "0.1.0"
