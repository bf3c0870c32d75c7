"""The embedded Istio-ambient mesh: identity, HBONE, ztunnel, the waypoint, and policy evaluation."""
