import hnlab


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert hnlab.__all__ == sorted(hnlab.__all__)
    assert hnlab.__all__ == [
        "HNClient",
        "HnlabError",
        "HourlyPostsCollectorJob",
        "JobScheduler",
        "Post",
        "PostRepository",
        "RocksDBStore",
        "SchedulerFactory",
        "Settings",
        "collector_from_settings",
    ]
    for name in hnlab.__all__:
        assert getattr(hnlab, name).__name__ == name


def test_every_cli_command_has_help() -> None:
    import click

    from hnlab.cli import cli

    def walk(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found = []
        for name, command in group.commands.items():
            found.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                found.extend(walk(command, f"{prefix} {name}"))
        return found

    commands = walk(cli, "hnlab")
    assert {name for name, _ in commands} >= {
        "hnlab db",
        "hnlab db upgrade",
        "hnlab db status",
        "hnlab collect",
        "hnlab run",
        "hnlab status",
        "hnlab runs",
        "hnlab cache check",
        "hnlab cache rebuild",
        "hnlab simulate",
        "hnlab demo",
        "hnlab report",
    }
    for name, command in commands:
        assert command.help and command.help.strip(), f"{name} has no help"
