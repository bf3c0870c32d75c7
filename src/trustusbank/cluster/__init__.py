"""The state every process of the embedded cluster reads, and nothing that runs.

`topology` is who is where (nodes, pods, addresses, identities, Services), planned from the
manifests; `discovery` resolves a name or address to a pod or Service as cluster DNS would;
`layout` is where the cluster's files live; `watch` is the manifests in force (deploy/ plus
what was applied, expanded by the kagent controller); `subnet` claims the cluster's loopback
block; `ports` are the mesh's well-known ports. The node proxies, the waypoint, the agents and
the orchestrator all read these; none of them is read back.
"""
