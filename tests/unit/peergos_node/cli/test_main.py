"""`peergos` dispatch: usage, unknown commands, and help for every sub-command without running it."""

from __future__ import annotations

import pytest

from peergos_node.cli.main import COMMANDS, main


def test_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("flag", ["--help", "-help", "-h"])
def test_help_flag_prints_the_command_doc_and_runs_nothing(
    command: str, flag: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    # `daemon --help` used to start a server; now it must return at once with the command's description
    assert main([command, "-PEERGOS_PATH", str(tmp_path), flag]) == 0
    out = capsys.readouterr().out
    assert f"peergos {command}" in out or command in out


def test_a_closed_pipe_ends_quietly() -> None:
    # `peergos daemon --help | head -1` used to end with a BrokenPipeError traceback: here the reader is
    # gone before the command (which takes a while to import) writes anything
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "peergos_node.cli.main", "daemon", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err
