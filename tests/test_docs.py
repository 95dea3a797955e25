"""README cannot drift from the code: every setting and every command is documented."""

from __future__ import annotations

import dataclasses
import re

import click
import pytest

from hnlab.cli import cli
from hnlab.config import Settings, env_name
from tests.helpers import REPO

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def commands(group: click.Group, prefix: str = "hnlab") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                found.append((path, command))
            found += commands(command, path)
        else:
            found.append((path, command))
    return found


def test_every_setting_is_in_the_configuration_table() -> None:
    table = section("Configuration")
    documented = set(re.findall(r"`(HNLAB_[A-Z_]+)`", table))
    settings = {env_name(f.name) for f in dataclasses.fields(Settings) if f.name != "labels"}
    assert sorted(settings - documented) == []
    assert sorted(documented - settings) == []


@pytest.mark.parametrize(("path", "command"), commands(cli), ids=lambda v: str(v))
def test_every_command_is_in_the_cli_table(path: str, command: click.Command) -> None:
    table = section("CLI reference")
    assert re.search(rf"`{re.escape(path)}( |`)", table), f"{path} is not in README's CLI table"


def test_every_name_readme_imports_from_hnlab_is_there() -> None:
    """The public paths README shows keep working after the layout changed."""
    import hnlab

    imports = re.findall(r"from hnlab import ([A-Za-z_, ]+)", README)
    names = {name.strip() for line in imports for name in line.split(",") if name.strip()}
    assert {"analysis", "plots", "HourlyPostsCollectorJob", "SchedulerFactory"} <= names
    missing = [name for name in sorted(names) if getattr(hnlab, name, None) is None]
    assert missing == []
    from hnlab import analysis

    listed = re.search(r"for DataFrames \(([^)]*)\)", README)
    assert listed is not None
    functions = re.findall(r"`(\w+)`", listed.group(1))
    assert [f for f in functions if not callable(getattr(analysis, f, None))] == []
