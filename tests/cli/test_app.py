"""The command surface said once (cli/app.py): summaries match the commands, help imports none of them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trustusbank.cli.app import COMMANDS, load


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_the_commands_own(name: str) -> None:
    command = load(name)
    assert command.name == name
    assert command.get_short_help_str(limit=200) == COMMANDS[name].summary
    assert command.hidden == COMMANDS[name].hidden


def test_the_root_help_lists_every_visible_command_without_importing_one() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from trustusbank.cli.app import app\n"
        "result = CliRunner().invoke(app, ['--help'], terminal_width=200)\n"
        "print(result.output)\n"
        "print('LOADED', sorted(m for m in sys.modules if m.endswith('_cmd')))\n"
    )
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "LOADED []" in out
    for name, entry in COMMANDS.items():
        assert (f"│ {name} " in out) is not entry.hidden
        if not entry.hidden:
            assert entry.summary in out
