"""The agents: kagent resources served as A2A agents, the models behind them, and who may call them.

`model/` is the provider-neutral conversation and the clients for real providers,
`scripted/` the deterministic stand-in model, `kagent/` what the kagent controller
reads and writes (Agent, ModelConfig, RemoteMCPServer, AccessPolicy), `runtime/`
the A2A server and the model <-> tool loop.
"""
