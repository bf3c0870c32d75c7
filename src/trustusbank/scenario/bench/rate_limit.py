"""The benchmarks' lift of deploy/'s rate limit on the account MCP route.

deploy/'s limit on account-mcp-route (600 a minute, burst 60) is a brake on runaway agents,
and a benchmark sending prompts back to back is one: after a minute of it, the agent's calls
are refused with 429 and what is measured is the brake. A route-level policy of the
benchmark's own takes precedence over it, as in agentgateway.
"""

from __future__ import annotations

from trustusbank.cluster.layout import ClusterFiles

UNLIMITED = """\
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: benchmark-rate-limit
  namespace: trustusbank-platform
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: HTTPRoute
      name: account-mcp-route
  traffic:
    rateLimit:
      local:
        - requests: 1000000
          unit: Seconds
"""


def lift_rate_limit(files: ClusterFiles) -> None:
    """Before `up`: the benchmark's own unlimited policy in the cluster's applied manifests."""
    files.make()
    (files.applied / "benchmark-rate-limit.yaml").write_text(UNLIMITED)
