"""AgentDojo's attack wordings, read from the installed `agentdojo` package without importing it.

Importing agentdojo pulls in its model clients (openai, anthropic, cohere, google-genai,
langchain); its wordings are plain string constants in two source files, so they are read
with `ast`: the text is AgentDojo's own, at the version installed, never a copy in our tree.
Install it without its dependencies: `pip install --no-deps agentdojo==0.1.35`.

A wording is a template with `{goal}`, `{user}`, `{model}` (and `{task}`) placeholders, filled
as AgentDojo's FixedJailbreakAttack fills them. Attacks whose text is computed from a task
suite's ground truth (`tool_knowledge`) or that are not goal injections (the DoS family,
`manual`) are left out.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from trustusbank.errors import UnavailableError

PACKAGE = "agentdojo"
PINNED = "agentdojo==0.1.35"
INSTALL = f"pip install --no-deps {PINNED}"
FILES = ("baseline_attacks.py", "important_instructions_attacks.py")
CONSTANTS = "base_attacks.py"
DEFAULT_ATTACKS = ("important_instructions",)
SKIPPED = frozenset({"manual", "tool_knowledge"})


class AgentDojoMissing(UnavailableError, RuntimeError):
    """The agentdojo package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Attack:
    name: str
    template: str
    user: str
    model: str
    source: str  # the file it was read from, for the report

    def render(self, goal: str, task: str = "") -> str:
        """The injection text for `goal`, as AgentDojo's FixedJailbreakAttack.attack formats it."""
        return self.template.format(goal=goal, user=self.user, model=self.model, task=task)


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # finds, without running, the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise AgentDojoMissing(f"the attack wordings come from AgentDojo: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def _constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign) else None
        if isinstance(node, ast.Assign) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.update({t.id: value.value for t in node.targets if isinstance(t, ast.Name)})
    return found


def _string(node: ast.expr | None, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


@dataclass
class _Class:
    bases: list[str]
    name: str | None = None
    template: str | None = None
    user: str | None = None
    model: str | None = None


def _read_class(node: ast.ClassDef, names: dict[str, str]) -> _Class:
    found = _Class([b.id for b in node.bases if isinstance(b, ast.Name)])
    for item in ast.walk(node):
        if isinstance(item, ast.Assign) and len(item.targets) == 1:
            target, value = item.targets[0], item.value
            if isinstance(target, ast.Name) and target.id == "name":
                found.name = _string(value, names)
            elif isinstance(target, ast.Name) and target.id == "_JB_STRING":
                found.template = _string(value, names)
            elif isinstance(target, ast.Attribute) and target.attr in ("user_name", "model_name"):
                text = _string(value, names)  # a call (the pipeline's model name) leaves it to the default
                setattr(found, target.attr.removesuffix("_name"), text)
        elif (
            isinstance(item, ast.Call)
            and isinstance(item.func, ast.Attribute)
            and item.func.attr == "__init__"
        ):
            first = _string(item.args[0], names) if item.args else None
            if first is not None and found.template is None:
                found.template = first
    return found


def _inherited(classes: dict[str, _Class], cls: _Class, field: str) -> str | None:
    """A class attribute, or the one its base class (in the same file) sets."""
    value: str | None = getattr(cls, field)
    for base in cls.bases:
        if value is None and base in classes:
            value = _inherited(classes, classes[base], field)
    return value


def load_attacks(root: Path | None = None) -> dict[str, Attack]:
    """Every goal-injection attack AgentDojo registers in its baseline and important-instructions files."""
    root = root or package_dir() / "attacks"
    names = _constants(ast.parse((root / CONSTANTS).read_text()))
    default_user, default_model = names["DEFAULT_USER_NAME"], names["DEFAULT_MODEL_NAME"]
    attacks: dict[str, Attack] = {}
    for file in FILES:
        path = root / file
        tree = ast.parse(path.read_text())
        classes = {n.name: _read_class(n, names) for n in tree.body if isinstance(n, ast.ClassDef)}

        for cls in classes.values():
            template = _inherited(classes, cls, "template")
            if cls.name is None or cls.name in SKIPPED or template is None:
                continue
            attacks[cls.name] = Attack(
                name=cls.name,
                template=template,
                user=_inherited(classes, cls, "user") or default_user,
                model=_inherited(classes, cls, "model") or default_model,
                source=str(path),
            )
    if not attacks:
        raise AgentDojoMissing(f"no attack wordings found under {root}; reinstall: {INSTALL}")
    return attacks


def choose(names: tuple[str, ...] | None) -> list[Attack]:
    """The attacks named (all for ("all",)); an unknown name is an error listing the known ones."""
    every = load_attacks()
    wanted = DEFAULT_ATTACKS if not names else tuple(every) if names == ("all",) else names
    unknown = [n for n in wanted if n not in every]
    if unknown:
        raise ValueError(f"unknown attack {', '.join(unknown)}; AgentDojo's: {', '.join(sorted(every))}")
    return [every[n] for n in wanted]
