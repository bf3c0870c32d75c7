"""Whether the three acts told the seed's story, judged from what was observed, one rule per claim.

Kept apart from the code that runs the acts so the rules can be read (and tested) as
the story's claims: same reply in all three acts, exfil only in Act 2, a deny naming
the converter in Act 3 with the two alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trustusbank.scenario.receipts import ActImage, Alert, Deny, ToolCall

LEAK_ARGUMENT = "customer_profile"
# BankToAttackerAttempt counts attempts at the source, allowed or not: it fires in both rug-pull acts.
ACT2_ALERTS = ("BankToAttackerAttempt",)
ACT3_ALERTS = ("IstioAuthZDeny", "BankToAttackerAttempt")


@dataclass
class ActRecord:
    """One act as observed: its receipts, then the verdict `judge` gives it."""

    number: int
    title: str
    reply: str = ""
    chain: list[ToolCall] = field(default_factory=list)
    exfil_before: int = 0
    exfil_after: int = 0
    denies: list[Deny] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    image: ActImage | None = None  # None when the act's change failed before an image was known
    seconds: float = 0.0
    error: str | None = None
    verdict: str = ""
    ok: bool = False

    @property
    def new_exfil(self) -> int:
        return self.exfil_after - self.exfil_before

    @property
    def tools(self) -> list[str]:
        return [call.name for call in self.chain]

    @property
    def leaked_through_tool(self) -> bool:
        return any(LEAK_ARGUMENT in call.arguments for call in self.chain)

    @property
    def alert_names(self) -> set[str]:
        return {a.alertname for a in self.alerts}

    def to_dict(self) -> dict[str, Any]:
        """The act in `trustusbank demo --json`."""
        return {
            "number": self.number,
            "title": self.title,
            "reply": self.reply,
            "chain": [call.to_dict() for call in self.chain],
            "exfil_before": self.exfil_before,
            "exfil_after": self.exfil_after,
            "denies": [deny.to_dict() for deny in self.denies],
            "alerts": [alert.to_dict() for alert in self.alerts],
            "image": self.image.to_dict() if self.image is not None else {},
            "seconds": self.seconds,
            "error": self.error,
            "verdict": self.verdict,
            "ok": self.ok,
            "new_exfil": self.new_exfil,
            "leaked_through_tool": self.leaked_through_tool,
        }


def judge(acts: list[ActRecord], converter_identity: str) -> list[str]:
    """Set each act's verdict and ok; return the reasons the story did not hold (empty = it held)."""
    problems: list[str] = []
    by_number = {a.number: a for a in acts}
    baseline = by_number.get(1)
    for act in acts:
        found: list[str] = [f"failed: {act.error}"] if act.error else []
        found += _rate_limited(act)
        if baseline is not None and act.reply != baseline.reply and not act.error:
            found.append("the customer's reply differs from Act 1")
        if act.number == 1:
            found += [] if act.new_exfil == 0 else [f"{act.new_exfil} exfil events with a clean build"]
            found += [] if not act.denies else [f"{len(act.denies)} denies with no defence applied"]
        elif act.number == 2:
            found += [] if act.leaked_through_tool else ["the agent did not pass the profile to a tool"]
            found += [] if act.new_exfil > 0 else ["the attacker received nothing"]
            missing = [name for name in ACT2_ALERTS if name not in act.alert_names]
            found += [f"alert {name} did not fire" for name in missing]
        elif act.number == 3:
            found += [] if act.new_exfil == 0 else [f"{act.new_exfil} exfil events despite the defence"]
            named = [d for d in act.denies if d.source_identity == converter_identity]
            found += [] if named else [f"no deny names {converter_identity}"]
            missing = [name for name in ACT3_ALERTS if name not in act.alert_names]
            found += [f"alert {name} did not fire" for name in missing]
        act.ok = not found
        act.verdict = _verdict(act) if act.ok else "; ".join(found)
        problems += [f"Act {act.number}: {p}" for p in found]
    return problems


def _rate_limited(act: ActRecord) -> list[str]:
    """A rate limit that refused the agent's own calls: the act did not run as a customer's would.

    Every other claim of the act is then moot (the agent stopped short), so this is said first,
    with the policy to wait out, rather than leaving "no deny names the converter" to explain it.
    """
    limited = [d for d in act.denies if d.rate_limited]
    if not limited:
        return []
    policies = ", ".join(sorted({d.policy or "a local rate limit" for d in limited}))
    return [
        f"the agent's calls were rate limited {len(limited)} time(s) by {policies}: the act could not run "
        "as a customer's prompt would; wait for the limit to refill and run it again"
    ]


def _verdict(act: ActRecord) -> str:
    if act.number == 1:
        return "clean: the customer is served, nothing leaves the bank"
    if act.number == 2:
        return f"breach: the profile left through convert_currency; {act.new_exfil} event(s) at the attacker"
    return "contained: same reply, zero new exfil, the converter's identity denied and alerted on"
