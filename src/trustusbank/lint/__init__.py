"""`trustusbank policy lint`: what a real cluster will actually enforce of a policy YAML.

`findings` is the finding model and its rendering; `istio` checks AuthorizationPolicy
against what istiod hands ztunnel (via `mesh.authz`); `agentgateway` checks
AgentgatewayPolicy CEL against the attributes agentgateway defines and the places it
evaluates them; `cel_refs` finds the attributes a CEL expression reads; `run` loads a
file or folder leniently and runs every check.
"""

from __future__ import annotations

from trustusbank.lint.findings import Finding, Severity, render_human, render_json, summary
from trustusbank.lint.run import lint_path

__all__ = ["Finding", "Severity", "lint_path", "render_human", "render_json", "summary"]
