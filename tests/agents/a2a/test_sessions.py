"""An agent's conversation memory over A2A: bounded in conversations and turns, each drop counted."""

from __future__ import annotations

from tests.agents.a2a.support import PlanModel, agent_spec, answer, ask, running_agent
from trustusbank.agents.model.types import ModelRequest


def said(request: ModelRequest) -> list[str]:
    """What the model was shown of the conversation: every user message, oldest first."""
    return [m.text for m in request.messages if m.role == "user"]


async def test_an_agent_forgets_the_oldest_turns_and_conversations_and_counts_them() -> None:
    spec = agent_spec()
    model = PlanModel(lambda request: answer("noted"))
    labels = {"agent": spec.name, "namespace": spec.namespace}
    dropped = "trustusbank_agent_session_memory_dropped_total"
    with running_agent(spec, model, max_sessions=2, max_turns=2) as agent:

        def count(what: str) -> float | None:
            return agent.registry.get_sample_value(dropped, {**labels, "what": what})

        assert (count("turn"), count("conversation")) == (0, 0)  # shown before anything is dropped
        for n in range(3):
            await ask(agent.url, f"a{n}", context_id="a")
        await ask(agent.url, "a3", context_id="a")
        assert said(model.requests[-1]) == ["a1", "a2", "a3"]  # a0's turn was forgotten
        await ask(agent.url, "b0", context_id="b")
        await ask(agent.url, "c0", context_id="c")  # a third conversation: "a", the least recent, goes
        await ask(agent.url, "a4", context_id="a")
        assert said(model.requests[-1]) == ["a4"]
        # turns: a0 and a1, as a2 and a3 came; conversations: "a" for "c", then "b" for "a" again
        assert (count("turn"), count("conversation")) == (2, 2)
