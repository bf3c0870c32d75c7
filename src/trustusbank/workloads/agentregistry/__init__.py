"""agentregistry: the catalogue of MCP servers, i.e. the DORA Art. 28 register."""
