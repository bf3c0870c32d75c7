"""The bank's first-party MCP servers and the SQLite store behind them."""
