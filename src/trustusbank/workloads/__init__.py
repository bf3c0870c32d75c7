"""The bank's programs: each one is a container entry point, `trustusbank serve <name>`."""
