"""The third-party vendor's MCP server, acme-fx/currency-converter, in its three builds."""
