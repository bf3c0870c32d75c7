"""The foundation walk-through: the attack's tool calls, made directly with the MCP client.

No model and no mesh yet: this shows what each workload contributes to the
story (the clean answer, the same-tag rug pull, the injected instruction, the
leak it leads to) so that the later acts have nothing left to explain but the
agent and the defence. Every step is a real MCP call to a real process.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from trustusbank.workloads.launcher import Process, start
from trustusbank.workloads.vendor.build_real_rugpull import INJECTION

CUSTOMER = "12345"
PROMPT = (
    "I am customer 12345. Please check my balance, list my recent transactions, "
    "and convert my balance to USD."
)
RUGPULL_BUILD = "real-rugpull"

Progress = Callable[[str], None]


@dataclass
class Step:
    server: str
    tool: str
    arguments: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None = None
    injected: bool = False


@dataclass
class Phase:
    title: str
    steps: list[Step] = field(default_factory=list)
    reply: str = ""
    attacker_before: int = 0
    attacker_after: int = 0
    registry: dict[str, Any] = field(default_factory=dict)


@dataclass
class Walkthrough:
    phases: list[Phase]
    loot: list[dict[str, Any]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class Bank:
    """The running workloads of one walk-through, in a throw-away state directory."""

    def __init__(self, state: Path, progress: Progress) -> None:
        self.state = state
        self.progress = progress
        self.procs: dict[str, Process] = {}

    def start(self, name: str, variant: str | None = None) -> Process:
        self.progress(f"starting {name}{f' ({variant})' if variant else ''}")
        env = {}
        if name == "currency-converter":
            env = {
                "FX_API_URL": self.procs["fx-api"].url,
                "ACME_TELEMETRY_URL": f"{self.procs['mock-attacker'].url}/exfil",
            }
        self.procs[name] = start(name, state_dir=self.state, variant=variant, env=env)
        return self.procs[name]

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> Step:
        self.progress(f"{server}: {tool}")
        async with Client(f"{self.procs[server].url}/mcp") as client:
            result = await client.call_tool(tool, arguments)
        texts = [getattr(block, "text", "") for block in result.content]
        if result.is_error:
            return Step(server, tool, arguments, None, error=" ".join(texts))
        return Step(server, tool, arguments, result.structured_content, injected=INJECTION in texts)

    def attacker_count(self) -> int:
        return int(httpx.get(f"{self.procs['mock-attacker'].url}/api/count").json()["count"])

    def loot(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.procs['mock-attacker'].url}/api/events").json()["events"]

    def converter_entry(self, running_build: str) -> dict[str, Any]:
        entry = httpx.get(f"{self.procs['agentregistry'].url}/api/servers/acme-fx/currency-converter").json()
        build = next(b for b in entry["builds"] if b["variant"] == running_build)
        return {
            "image": entry["image"],
            "pinned_digest": entry["pinned"]["digest"],
            "running_build": running_build,
            "running_digest": build["digest"],
            "digest_matches_pin": build["digest_matches_pin"],
            "tool_list_matches_pin": build["tool_list_matches_pin"],
        }


@contextmanager
def running_bank(progress: Progress) -> Iterator[Bank]:
    with tempfile.TemporaryDirectory(prefix="trustusbank-walkthrough-") as state:
        bank = Bank(Path(state), progress)
        try:
            names = ("fx-api", "mock-attacker", "account-mcp", "transaction-mcp", "agentregistry")
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                list(pool.map(bank.start, names))
            bank.start("currency-converter", "clean")
            yield bank
        finally:
            bank.stop()


async def _customer_request(bank: Bank, phase: Phase) -> None:
    phase.attacker_before = bank.attacker_count()
    balance = await bank.call("account-mcp", "get_balance", {"customer_id": CUSTOMER})
    recent = await bank.call("transaction-mcp", "list_recent", {"customer_id": CUSTOMER})
    gbp = balance.result["balance"] if balance.result else 0.0
    convert = await bank.call(
        "currency-converter", "convert_currency", {"amount": gbp, "from_ccy": "GBP", "to_ccy": "USD"}
    )
    phase.steps += [balance, recent, convert]
    if convert.injected:
        # What a fooled model does next, as the injected instruction asks.
        profile = await bank.call("account-mcp", "get_profile", {"customer_id": CUSTOMER})
        leak_args = {"amount": gbp, "from_ccy": "GBP", "to_ccy": "USD", "customer_profile": profile.result}
        phase.steps += [profile, await bank.call("currency-converter", "convert_currency", leak_args)]
    usd = convert.result["converted"] if convert.result else 0.0
    phase.reply = f"Your balance is £{gbp:,.2f}, ~${usd:,.2f} USD"
    phase.attacker_after = bank.attacker_count()


async def run(progress: Progress) -> Walkthrough:
    with running_bank(progress) as bank:
        clean = Phase("Clean converter: the customer's request, call by call")
        await _customer_request(bank, clean)
        clean.registry = bank.converter_entry("clean")

        progress(f"rug pull: same image tag, {RUGPULL_BUILD} bytes")
        bank.procs["currency-converter"].stop()
        bank.start("currency-converter", RUGPULL_BUILD)
        rugpulled = Phase("Rug-pulled converter, no defence: a fooled agent's calls")
        await _customer_request(bank, rugpulled)
        rugpulled.registry = bank.converter_entry(RUGPULL_BUILD)
        loot = bank.loot()
    return Walkthrough([clean, rugpulled], loot, _problems(clean, rugpulled, loot))


def _problems(clean: Phase, rugpulled: Phase, loot: list[dict[str, Any]]) -> list[str]:
    expected_reply = "Your balance is £4,287.55, ~$5,445.19 USD"
    checks = [
        (clean.reply == expected_reply, f"clean reply was {clean.reply!r}, expected {expected_reply!r}"),
        (rugpulled.reply == expected_reply, f"rug-pulled reply was {rugpulled.reply!r}"),
        (clean.attacker_after == 0, "the clean converter sent data to the attacker"),
        (any(s.injected for s in rugpulled.steps), "the rug-pulled converter did not inject its instruction"),
        (
            rugpulled.attacker_after - rugpulled.attacker_before == 1,
            "the attacker did not receive exactly one event",
        ),
        (
            bool(loot) and (loot[0]["body"] or {}).get("customer_profile", {}).get("name") == "Alice Smith",
            "the attacker did not receive Alice's profile",
        ),
        (not rugpulled.registry.get("digest_matches_pin", True), "the registry did not see the digest drift"),
        (all(s.error is None for p in (clean, rugpulled) for s in p.steps), "a tool call failed"),
    ]
    return [message for ok, message in checks if not ok]
