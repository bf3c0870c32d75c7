"""Evidence every component emits: structured logs, metrics, traces."""
