"""What kagent's controller reads and writes, for the embedded runtime.

`schema` says what a cluster (and the embedded runtime) accepts in an Agent, ModelConfig,
RemoteMCPServer or AccessPolicy; `objects` are their typed views; `access` is what an
AccessPolicy means for one caller; `resolve` turns an Agent and what it names into the
`AgentSpec` the agent runtime reads; `checks` are the bundle's cross-object checks;
`controller` makes the Deployment, Service and ServiceAccount kagent would make.
"""
