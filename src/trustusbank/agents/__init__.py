"""The agents: kagent Agents served over A2A, and the models behind them.

`a2a/` is one Agent as a process (the A2A server, the model <-> tool loop, MCP tools, sub-agent
delegation, the AccessPolicy guard, spans); `model/` is the provider-neutral conversation and
the clients for real providers; `scripted/` the deterministic stand-in model (a simulation).
What kagent's controller reads and writes is `manifests/kagent/`.
"""
