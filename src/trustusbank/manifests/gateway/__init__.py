"""The Gateway API and agentgateway kinds: Gateway, HTTPRoute, AgentgatewayBackend, AgentgatewayPolicy.

`schema` is what a cluster (and the embedded waypoint) accepts; `objects` are the typed views.
The waypoint's route table is built from them in `mesh/waypoint/routes.py`.
"""
