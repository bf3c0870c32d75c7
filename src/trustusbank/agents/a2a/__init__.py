"""One kagent Agent as a process: an A2A server in front of a model <-> tool loop.

`server` builds the app, `executor` maps an A2A task onto one run of `loop`, which
calls the model and the tools: MCP servers (`mcp_tools`) and other agents over A2A
(`delegation`). `access_guard` decides who may call the agent, keyed by the caller
identity `callers` derives from the mesh. Everything a run does is recorded twice:
as the task's "tool-calls" artifact and as GenAI spans (`spans`).
"""
