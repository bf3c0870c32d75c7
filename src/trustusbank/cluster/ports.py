"""The mesh's well-known ports, said once: every node proxy, waypoint and tool reads them here.

They are Istio ambient's: ztunnel's outbound capture (15001), HBONE (15008) and the
metrics/readiness port (15020).
"""

from __future__ import annotations

OUTBOUND_PORT = 15001
"""Where a pod's outbound connections are captured by its node's ztunnel."""
HBONE_PORT = 15008
"""HTTP/2 CONNECT over mutual TLS, the tunnel between node proxies and waypoints."""
METRICS_PORT = 15020
"""Prometheus `/metrics` and readiness of a node proxy or waypoint."""
# Where an isolated pod finds its capture: inside its own network namespace, planted there by
# its node proxy (as istio-cni has ztunnel open its listeners in the pod's netns).
IN_POD_CAPTURE = "127.0.0.1"
