"""The waypoint (agentgateway's role): HTTPRoute routing, MCP-aware CEL policy, rate limits."""
