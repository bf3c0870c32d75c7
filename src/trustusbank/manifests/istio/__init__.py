"""Istio's security API (`security.istio.io`): AuthorizationPolicy and PeerAuthentication.

`schema` is what a cluster's validation would accept; `objects` are the typed views. What the
policies mean at ztunnel and at a waypoint is `mesh/authz/`.
"""
