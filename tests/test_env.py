"""env.py is the one list of settings: every name in the code is declared, every one documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.paths import REPO
from trustusbank import env
from trustusbank.errors import ConfigError

SRC = REPO / "src" / "trustusbank"
README = REPO / "README.md"
NAME = re.compile(r"TRUSTUSBANK_[A-Z_]+")
TABLE_INTRO = "Configuration is by environment"


def names_in_tree(root: Path) -> dict[str, set[str]]:
    """Every TRUSTUSBANK_* name written anywhere under root (as text), with the files it is in."""
    found: dict[str, set[str]] = {}
    for file in sorted(root.rglob("*")):
        if not file.is_file() or "__pycache__" in file.parts:
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name in NAME.findall(text):
            found.setdefault(name, set()).add(str(file.relative_to(root)))
    return found


def undeclared(found: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: files for name, files in found.items() if name not in env.BY_NAME}


def config_table(readme: str) -> list[list[str]]:
    """The rows (cells) of the README's configuration table, header and rule left out."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_INTRO))
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if not line.strip() and not rows:
            continue
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[2:]


def table_names(rows: list[list[str]]) -> tuple[set[str], set[str]]:
    """(names in the variable column, TRUSTUSBANK_* names anywhere in the table)."""
    variables = {n for row in rows for n in re.findall(r"`([A-Z][A-Z0-9_]*)`", row[0])}
    mentioned = {n for row in rows for cell in row for n in NAME.findall(cell)}
    return variables, mentioned


# -- (a) every name in the code is declared --------------------------------------------------


def test_every_name_in_src_is_declared() -> None:
    found = names_in_tree(SRC)
    assert "TRUSTUSBANK_STATE_DIR" in found, "the scan finds nothing: is SRC right?"
    missing = undeclared(found)
    assert not missing, f"TRUSTUSBANK_* names used in src/trustusbank but not declared in env.py: {missing}"


def test_the_scan_reports_an_undeclared_name(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text(
        'NAME = "TRUSTUSBANK_NOT_A_SETTING"\nSTATE = "TRUSTUSBANK_STATE_DIR"\n'
    )
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe TRUSTUSBANK_IN_BINARY")
    assert undeclared(names_in_tree(tmp_path)) == {"TRUSTUSBANK_NOT_A_SETTING": {"module.py"}}


# -- (b) the README's table and env.py list the same settings --------------------------------


def test_every_setting_is_in_the_readme_table() -> None:
    variables, _ = table_names(config_table(README.read_text(encoding="utf-8")))
    missing = sorted(s.name for s in env.SETTINGS if s.name not in variables)
    assert not missing, f"settings not in README.md's configuration table: {missing}"


def test_every_name_in_the_readme_table_is_declared() -> None:
    _, mentioned = table_names(config_table(README.read_text(encoding="utf-8")))
    assert "TRUSTUSBANK_STATE_DIR" in mentioned, "the table was not found"
    missing = sorted(mentioned - set(env.BY_NAME))
    assert not missing, f"README.md's configuration table names settings env.py does not declare: {missing}"


def test_the_table_reader_sees_a_missing_or_unknown_row() -> None:
    readme = (
        f"{TABLE_INTRO}, as in a container:\n\n| variable | used by | meaning |\n|---|---|---|\n"
        "| `TRUSTUSBANK_STATE_DIR` | all | where state lives |\n"
        "| `TRUSTUSBANK_GONE` / `--gone` | `up` | see also `TRUSTUSBANK_OTHER` |\n\nMoney is ...\n| x |\n"
    )
    variables, mentioned = table_names(config_table(readme))
    assert variables == {"TRUSTUSBANK_STATE_DIR", "TRUSTUSBANK_GONE"}
    assert mentioned - set(env.BY_NAME) == {"TRUSTUSBANK_GONE", "TRUSTUSBANK_OTHER"}


def test_each_setting_says_what_it_is() -> None:
    for setting in env.SETTINGS:
        assert setting.meaning, setting.name
        assert setting.readers, setting.name
        assert setting.parsed, setting.name
        assert setting.default is not None or setting.default_doc, f"{setting.name}: no default given"
        assert setting.external != setting.name.startswith(env.PREFIX), setting.name


def test_external_must_match_the_name() -> None:
    with pytest.raises(ValueError, match="external"):
        env.Setting("FX_API_URL", "m", "r", env.text, None)
    with pytest.raises(ValueError, match="external"):
        env.Setting("TRUSTUSBANK_X", "m", "r", env.text, None, external=True)


# -- (c) parsing: the default when unset, a good value, a loud error for a bad one -----------


def assert_loud(setting: env.Setting[Any], environ: dict[str, str], *words: str) -> None:
    with pytest.raises(env.SettingError) as raised:
        setting.read(environ)
    message = str(raised.value)
    assert message.startswith(f"{setting.name}="), message
    for word in words:
        assert word in message
    # callers catch it as the project's config error, and as the ValueError they always caught
    assert isinstance(raised.value, ConfigError)
    assert isinstance(raised.value, ValueError)


def test_an_int_setting() -> None:
    assert env.SMTP_PORT.read({}) == 2525
    assert env.SMTP_PORT.read({"TRUSTUSBANK_SMTP_PORT": "2600"}) == 2600
    assert_loud(env.SMTP_PORT, {"TRUSTUSBANK_SMTP_PORT": "smtp"}, "=smtp", "port")
    assert_loud(env.SMTP_PORT, {"TRUSTUSBANK_SMTP_PORT": ""}, "port")  # empty was never "unset" here


def test_a_float_setting() -> None:
    assert env.READY_TIMEOUT.read({}) == 60.0
    assert env.READY_TIMEOUT.read({"TRUSTUSBANK_READY_TIMEOUT": "2.5"}) == 2.5
    assert env.SVID_TTL_SECONDS.read({}) == 3600.0
    assert env.SVID_TTL_SECONDS.read({"TRUSTUSBANK_SVID_TTL_SECONDS": "8"}) == 8.0
    assert_loud(env.READY_TIMEOUT, {"TRUSTUSBANK_READY_TIMEOUT": "soon"}, "=soon", "number of seconds")
    assert_loud(env.SVID_TTL_SECONDS, {"TRUSTUSBANK_SVID_TTL_SECONDS": "1h"}, "number of seconds")


def test_path_settings(tmp_path: Path) -> None:
    assert env.STATE_DIR.read({}) is None
    assert env.STATE_DIR.read({"TRUSTUSBANK_STATE_DIR": ""}) is None
    assert env.STATE_DIR.read({"TRUSTUSBANK_STATE_DIR": "~/state"}) == Path.home() / "state"
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text("servers: []\n")
    assert env.AGENTREGISTRY_CATALOGUE.read({}) is None
    assert env.AGENTREGISTRY_CATALOGUE.read({"AGENTREGISTRY_CATALOGUE": str(catalogue)}) == catalogue
    missing = tmp_path / "none.yaml"
    with pytest.raises(env.SettingError) as raised:
        env.AGENTREGISTRY_CATALOGUE.read({"AGENTREGISTRY_CATALOGUE": str(missing)})
    assert str(raised.value) == f"AGENTREGISTRY_CATALOGUE={missing}: no such file"


def test_the_port_forwards_flag() -> None:
    assert env.PORT_FORWARDS.read({}) is True
    assert env.PORT_FORWARDS.read({"TRUSTUSBANK_PORT_FORWARDS": "0"}) is False
    assert env.PORT_FORWARDS.read({"TRUSTUSBANK_PORT_FORWARDS": "1"}) is True
    # As it always was: only exactly "0" turns them off.
    assert env.PORT_FORWARDS.read({"TRUSTUSBANK_PORT_FORWARDS": "false"}) is True


def test_blank_and_stripped_values() -> None:
    assert env.MODEL_GULLIBILITY.read({"TRUSTUSBANK_MODEL_GULLIBILITY": "  "}) == "always"
    assert env.MODEL_GULLIBILITY.read({"TRUSTUSBANK_MODEL_GULLIBILITY": " never "}) == "never"
    assert env.CHATBOT_AGENT.read({"TRUSTUSBANK_CHATBOT_AGENT": ""}) == ""  # used, and refused, as before
    assert env.ALLOWED_HOSTS.read({"TRUSTUSBANK_ALLOWED_HOSTS": " a, ,b "}) == ("a", "b")
    assert env.ALLOWED_HOSTS.read({}) == ()


def test_read_as_names_the_variable_when_the_readers_parser_refuses() -> None:
    def parse(raw: str | None) -> int:
        if raw is None:
            return 0
        raise ValueError("not a duration")

    assert env.ALERTS_GROUP_WAIT.read_as(parse, {}) == 0
    with pytest.raises(env.SettingError, match=r"^TRUSTUSBANK_ALERTS_GROUP_WAIT=5x: not a duration$"):
        env.ALERTS_GROUP_WAIT.read_as(parse, {"TRUSTUSBANK_ALERTS_GROUP_WAIT": "5x"})


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTUSBANK_SMTP_PORT", "2626")
    assert env.SMTP_PORT.read() == 2626
    monkeypatch.delenv("TRUSTUSBANK_SMTP_PORT")
    assert env.SMTP_PORT.read() == 2525
