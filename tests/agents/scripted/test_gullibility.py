from __future__ import annotations

import pytest

from trustusbank.agents.scripted.gullibility import Gullibility, from_env
from trustusbank.agents.scripted.model import ScriptedModel
from trustusbank.env import MODEL_GULLIBILITY

KEYS = [f"conversation-{i}" for i in range(400)]


@pytest.mark.parametrize(
    ("text", "probability", "seed"),
    [
        ("always", 1.0, 0),
        (" Never ", 0.0, 0),
        ("0.3", 0.3, 0),
        ("p=0.3", 0.3, 0),
        ("p=0.3,seed=7", 0.3, 7),
        ("seed=7, p=0.25", 0.25, 7),
        ("1", 1.0, 0),
        ("P=1,SEED=3", 1.0, 3),
    ],
)
def test_parse(text: str, probability: float, seed: int) -> None:
    parsed = Gullibility.parse(text)
    assert (parsed.probability, parsed.seed) == (probability, seed)
    assert Gullibility.parse(str(parsed)) == parsed


def test_str_forms() -> None:
    assert str(Gullibility.always()) == "always"
    assert str(Gullibility.never()) == "never"
    assert str(Gullibility(0.3, 7)) == "p=0.3,seed=7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("sometimes", "expected 'always', 'never'"),
        ("1.5", "between 0 and 1"),
        ("-0.1", "between 0 and 1"),
        ("nan", "between 0 and 1"),
        ("p=0.3,seed=x", "seed must be an integer"),
        ("seed=3", "p=<probability> is required"),
        ("p=0.3,q=1", "unknown key 'q'"),
        ("p=0.3,p=0.4", "given twice"),
        ("p=0.3,", "is not key=value"),
        ("p=", "is not key=value"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="gullibility") as err:
        Gullibility.parse(text)
    assert message in str(err.value)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Gullibility(2.0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        Gullibility(0.5, "7")  # type: ignore[arg-type]


def test_always_and_never() -> None:
    assert all(Gullibility.always().obeys(k) for k in KEYS)
    assert not any(Gullibility.never().obeys(k) for k in KEYS)


def test_probability_is_deterministic_and_roughly_right() -> None:
    gullibility = Gullibility.parse("p=0.3,seed=7")
    first = [gullibility.obeys(k) for k in KEYS]
    assert first == [Gullibility.parse("p=0.3,seed=7").obeys(k) for k in KEYS]
    assert True in first
    assert False in first
    assert 0.2 < sum(first) / len(first) < 0.4


def test_seed_changes_which_conversations_are_fooled() -> None:
    a = [Gullibility(0.5, 1).obeys(k) for k in KEYS]
    b = [Gullibility(0.5, 2).obeys(k) for k in KEYS]
    assert a != b


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODEL_GULLIBILITY.name, raising=False)
    assert from_env() == Gullibility.always()
    monkeypatch.setenv(MODEL_GULLIBILITY.name, "p=0.4,seed=9")
    assert from_env() == Gullibility(0.4, 9)
    assert ScriptedModel().gullibility == Gullibility(0.4, 9)
    monkeypatch.setenv(MODEL_GULLIBILITY.name, "often")
    with pytest.raises(ValueError, match=MODEL_GULLIBILITY.name):
        from_env()
