"""The MCP guard: an external processor the waypoint calls before a tool call is forwarded
and before a tool result reaches the agent (issue 16's "guard at the waypoint").

It pins each backend's tool definitions (`pins`), quarantines instruction-like text in
results (`quarantine`), refuses arguments carrying values read from another backend
(`dataflow`), decides in one place (`guard`) and serves the waypoint's wire (`wire`, `app`).
"""
