"""The `trustusbank` command."""
