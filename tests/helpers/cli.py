"""Checking what a ``clockface ...`` command run by click's CliRunner answered."""

from __future__ import annotations

from collections.abc import Mapping

from click.testing import CliRunner, Result

from clockface.cli import main


def ok(result: Result) -> str:
    """The standard output of a command that succeeded."""
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(result: Result, *words: str, code: int = 1) -> str:
    """The one ``Error:`` line of a failed command, checked for ``words``; no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def run(
    *args: str, env: Mapping[str, str | None] | None = None, input: str | None = None
) -> Result:
    """``clockface ARGS`` in this process (click's CliRunner); errors end as exit codes."""
    return CliRunner().invoke(main, list(args), env=env, input=input)


def succeeds(
    *args: str, env: Mapping[str, str | None] | None = None, input: str | None = None
) -> Result:
    """``clockface ARGS``, which must exit 0."""
    result = run(*args, env=env, input=input)
    assert result.exit_code == 0, (args, result.output)
    return result


def report(*args: str) -> Result:
    """``clockface report ARGS``; an exception is raised, not turned into an exit code."""
    return CliRunner().invoke(main, ["report", *args], catch_exceptions=False)
