"""How often the scripted model falls for an instruction injected into a tool result.

Real models are fooled some of the time, not never; the demo's point is that the
mesh must hold even when the model is fooled every time, so the default is
"always". A probability makes the model fooled on some conversations only, and a
seed makes which ones reproducible: the same conversation always gets the same
answer, so a failing run can be replayed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from trustusbank.env import MODEL_GULLIBILITY

_FORMS = "expected 'always', 'never', a probability such as '0.3', or 'p=0.3,seed=7'"


@dataclass(frozen=True)
class Gullibility:
    """Obey an injection with `probability`, decided per conversation from `seed`."""

    probability: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.probability, bool) or not isinstance(self.probability, int | float):
            raise ValueError(f"gullibility probability must be a number, got {self.probability!r}")
        if not math.isfinite(self.probability) or not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"gullibility probability must be between 0 and 1, got {self.probability!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"gullibility seed must be an integer, got {self.seed!r}")
        object.__setattr__(self, "probability", float(self.probability))

    @classmethod
    def always(cls) -> Gullibility:
        return cls(1.0)

    @classmethod
    def never(cls) -> Gullibility:
        return cls(0.0)

    @classmethod
    def parse(cls, text: str) -> Gullibility:
        """'always', 'never', '0.3', 'p=0.3' or 'p=0.3,seed=7' (keys in any order)."""
        raw = text.strip().lower()
        if raw == "always":
            return cls.always()
        if raw == "never":
            return cls.never()
        if not raw:
            raise ValueError(f"empty gullibility: {_FORMS}")
        if "=" not in raw:
            return cls(_probability(text, raw))
        fields: dict[str, str] = {}
        for part in raw.split(","):
            key, sep, value = (s.strip() for s in part.partition("="))
            if not sep or not value:
                raise ValueError(f"invalid gullibility {text!r}: {part.strip()!r} is not key=value; {_FORMS}")
            if key not in ("p", "seed"):
                raise ValueError(f"invalid gullibility {text!r}: unknown key {key!r} (use p and seed)")
            if key in fields:
                raise ValueError(f"invalid gullibility {text!r}: {key!r} given twice")
            fields[key] = value
        if "p" not in fields:
            raise ValueError(f"invalid gullibility {text!r}: p=<probability> is required")
        try:
            seed = int(fields.get("seed", "0"))
        except ValueError:
            raise ValueError(f"invalid gullibility {text!r}: seed must be an integer") from None
        return cls(_probability(text, fields["p"]), seed)

    def obeys(self, conversation_key: str) -> bool:
        """Whether the model falls for an injection in this conversation; stable for (seed, key)."""
        if self.probability >= 1.0:
            return True
        if self.probability <= 0.0:
            return False
        digest = hashlib.sha256(f"{self.seed}\x00{conversation_key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        return draw < self.probability

    def __str__(self) -> str:
        if self.seed == 0 and self.probability == 1.0:
            return "always"
        if self.seed == 0 and self.probability == 0.0:
            return "never"
        return f"p={self.probability!r},seed={self.seed}"


def _probability(text: str, value: str) -> float:
    try:
        p = float(value)
    except ValueError:
        raise ValueError(f"invalid gullibility {text!r}: {_FORMS}") from None
    if not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"invalid gullibility {text!r}: the probability must be between 0 and 1")
    return p


def from_env() -> Gullibility:
    """The gullibility in TRUSTUSBANK_MODEL_GULLIBILITY; 'always' when unset or empty."""
    return MODEL_GULLIBILITY.read_as(Gullibility.parse)
