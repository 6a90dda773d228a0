"""Every ``reviews`` command and sub-command has ``--help`` that exits 0 and ends with an
example; the examples name the command they document and are valid command lines.

Commands are discovered from the argparse parser itself (sub-parsers, and the
positional actions with a fixed set of choices such as ``db upgrade|info``), so a new
command is checked the day it is added.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex

import pytest

from scraper.cli import build_parser, main

#: The last section of a help text: its heading, then only indented example lines.
EXAMPLES_AT_END = re.compile(r"\n\n(Examples?):\n((?:  \S.*\n)+)\Z")


def sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def actions(parser: argparse.ArgumentParser) -> list[str]:
    """The words of a positional argument with fixed choices (``db upgrade|info``)."""
    return [
        str(choice)
        for action in parser._actions
        if not action.option_strings and action.choices and not isinstance(action.choices, dict)
        for choice in action.choices
    ]


def commands() -> list[tuple[str, ...]]:
    """Every command line prefix with its own help: commands, then their actions."""
    found: list[tuple[str, ...]] = []

    def walk(prefix: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
        for name, child in sub_parsers(parser).items():
            found.append((*prefix, name))
            found.extend((*prefix, name, word) for word in actions(child))
            walk((*prefix, name), child)

    walk((), build_parser())
    return found


COMMANDS = commands()


def help_text(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main([*words, "--help"])
    output = capsys.readouterr()
    assert info.value.code == 0, output.err
    assert output.err == ""
    return output.out


def example_lines(text: str) -> list[str]:
    found = EXAMPLES_AT_END.search(text)
    assert found, "the help does not end with an Example: section"
    return [line.strip() for line in found.group(2).splitlines()]


def test_the_commands_are_found() -> None:
    # The discovery itself: the commands of the README's tour, and the actions.
    names = {words[0] for words in COMMANDS}
    assert {"parse", "archive", "crawl", "import", "query", "export", "run", "runs"} <= names
    assert {"sql", "stats", "import-warc", "jobs", "schedule", "db"} <= names
    assert ("db", "info") in COMMANDS and ("schedule", "install") in COMMANDS


def test_the_top_level_help_ends_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert example_lines(help_text((), capsys))


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_help_exits_0_and_ends_with_an_example_of_the_command(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    examples = example_lines(help_text(words, capsys))
    prefix = ["reviews", *words]
    assert any(shlex.split(line, comments=True)[: len(prefix)] == prefix for line in examples), (
        f"no example of `{' '.join(prefix)}` in {examples}"
    )


@pytest.mark.parametrize("words", [words for words in COMMANDS if len(words) == 1], ids=" ".join)
def test_every_example_is_a_valid_command_line(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    for line in example_lines(help_text(words, capsys)):
        argv = shlex.split(line, comments=True)
        for shell in ("|", ">"):  # what follows goes to the shell, not to reviews
            argv = argv[: argv.index(shell)] if shell in argv else argv
        assert argv[:2] == ["reviews", words[0]], line
        args = build_parser(argv[1]).parse_args(argv[1:])  # exits 2 on a bad option
        assert args.command == words[0]


def test_each_command_module_is_named_after_a_command_it_holds() -> None:
    # `reviews import` is in cli/import_.py, `import-warc` in cli/import_warc.py: a
    # module named after its command is found by reading the command line, and only
    # that module is loaded to run it.
    from scraper.cli import COMMAND_MODULES, module_of

    for name in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        commands = parser.add_subparsers()
        importlib.import_module(f"scraper.cli.{name}").register(commands)
        own = [command for command in commands.choices if module_of(command) == name]
        assert own, f"cli/{name}.py registers no command named after it"
        # Its command alone builds a parser of that module's commands only.
        assert set(sub_parsers(build_parser(own[0]))) == set(commands.choices)
