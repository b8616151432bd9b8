"""docs/cli.md from the argparse parsers of `edge`, `trainer` and `collector`: every command, its usage, its options.

The parsers are the single source (edge/cli/commands.py, trainer/cli.py and collector/cli.py `build_parser()`, with
the subcommands other modules register): this module walks them, so a new command or option
shows up in the reference when it is regenerated, and tests/docs/test_docs.py fails until then.

Built without TensorFlow (the trainer's parser imports none) and in an empty environment, so
that defaults read from the environment (`trainer sagemaker --region` from $AWS_REGION) do not
leak the writer's settings into the reference.
"""

from __future__ import annotations

import argparse
import os
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath

from edge.config.reference import markdown_text

GENERATOR = "make docs (python -m tests.docs.generate)"
USAGE_WIDTH = 100
# argparse's own group titles (they differ between Python versions), as the reference names them.
GROUP_TITLES = {"positional arguments": "Arguments", "options": "Options", "optional arguments": "Options"}


@dataclass(frozen=True)
class Command:
    """One parser in the tree: `edge`, `edge run`, `trainer sagemaker train`."""

    parser: argparse.ArgumentParser
    help: str | None      # the one-line help its parent lists it with
    depth: int            # 0 for the program itself

    @property
    def name(self) -> str:
        return self.parser.prog


@contextmanager
def _empty_environment() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_parsers() -> list[argparse.ArgumentParser]:
    """The `edge` and `trainer` parsers, built as a fresh shell without any settings would build them."""
    from collector.cli import build_parser as collector_parser
    from edge.cli.commands import build_parser as edge_parser
    from trainer.cli import build_parser as trainer_parser

    with _empty_environment():
        return [edge_parser(), trainer_parser(), collector_parser()]


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def commands(parser: argparse.ArgumentParser, help: str | None = None, depth: int = 0) -> Iterator[Command]:
    """The parser and all its subcommands, depth first, in the order they were added."""
    yield Command(parser, help, depth)
    sub = _subparsers(parser)
    if sub is None:
        return
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    for name, child in sub.choices.items():
        yield from commands(child, helps.get(name), depth + 1)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The arguments a reader looks up: everything but -h/--help and the subcommand slot."""
    return [action for action in parser._actions
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
            and action.help is not argparse.SUPPRESS]


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: `edge install-service` → edge-install-service."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)


def usage(parser: argparse.ArgumentParser) -> str:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _prose_cell(text: str) -> str:
    return _cell(markdown_text(text))


def _value_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def default_text(action: argparse.Action) -> str:
    if action.required:
        return "*required*"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._VersionAction)):
        return ""
    if action.default is None or action.default is argparse.SUPPRESS:
        return ""
    return f"`{_value_text(action.default)}`"


def _choices_text(action: argparse.Action) -> str | None:
    choices = action.choices
    if choices is None:
        return None
    if isinstance(choices, range):
        return f"{choices.start} to {choices.stop - 1}"
    return "one of " + ", ".join(f"`{choice}`" for choice in choices)


def description_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = _formatter(parser)._expand_help(action) if action.help else ""
    choices = _choices_text(action)
    if choices and "{" not in invocation(parser, action):  # not listed in the invocation already
        text = (text + "; " if text else "") + choices
    if isinstance(action, argparse._AppendAction) and "repeatable" not in text:
        text = (text + " " if text else "") + "(repeatable)"
    return text


def invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """`--config CONFIG`, `-v, --verbose`, `IMG`: as `--help` lists it."""
    return _formatter(parser)._format_action_invocation(action)


def _table(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[str]:
    lines = ["| Argument | Default | Description |", "|---|---|---|"]
    for action in actions:
        parts = [", ".join(f"`{part}`" for part in invocation(parser, action).split(", ")),
                 default_text(action)]
        lines.append("| " + " | ".join([_cell(part) for part in parts] + [_prose_cell(description_text(parser, action))])
                     + " |")
    return lines + [""]


def _description(parser: argparse.ArgumentParser) -> list[str]:
    text = parser.description
    if not text:
        return []
    if issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
        return textwrap.dedent(text).strip().splitlines() + [""]
    return [markdown_text(" ".join(text.split())), ""]


def render_command(command: Command) -> list[str]:
    parser = command.parser
    level = "#" * min(2 + command.depth, 4)
    lines = [f"{level} `{command.name}`", ""]
    if command.help:
        lines += [markdown_text(command.help[:1].upper() + command.help[1:] + ("" if command.help.endswith(".") else ".")), ""]
    lines += _description(parser)
    lines += ["```text", usage(parser), "```", ""]
    sub = _subparsers(parser)
    if sub is not None:
        lines += ["| Command | Description |", "|---|---|"]
        for choice in sub._choices_actions:
            child = sub.choices[choice.dest]
            lines.append(f"| [`{child.prog}`](#{anchor(child.prog)}) | {_prose_cell(choice.help or '')} |")
        lines.append("")
    for group in parser._action_groups:
        actions = [action for action in group._group_actions if action in options(parser)]
        if not actions:
            continue
        title = GROUP_TITLES.get(group.title or "", group.title or "")
        lines += [f"**{markdown_text(title[:1].upper() + title[1:])}**", ""]
        lines += _table(parser, actions)
    return lines


def render_markdown(parsers: list[argparse.ArgumentParser] | None = None) -> str:
    """docs/cli.md."""
    parsers = build_parsers() if parsers is None else parsers
    everything = [command for parser in parsers for command in commands(parser)]
    lines = [
        f"<!-- Generated by `{GENERATOR}` from the argparse parsers of `edge` (edge/cli/commands.py),",
        "     `trainer` (trainer/cli.py) and `collector` (collector/cli.py); do not edit: change the parsers'",
        "     help and regenerate.",
        "     tests/docs/test_docs.py fails when this file is stale. -->",
        "",
        "# Command-line reference",
        "",
        "Three programs: `edge`, the daemon and its operator commands on the field device (configured by",
        "one TOML file: [configuration reference](configuration.md)); `trainer`, which builds the",
        "models on a workstation or on SageMaker; and `collector`, the fleet's central half on a server",
        "([fleet](fleet.md)). Every command also takes `-h`/`--help`. Exit codes:",
        "0 success, 1 a failure while working, 2 bad arguments or configuration (the message names",
        "the option or key).",
        "",
    ]
    for command in everything:
        indent = "  " * command.depth
        lines.append(f"{indent}- [`{command.name}`](#{anchor(command.name)})")
    lines.append("")
    for command in everything:
        lines += render_command(command)
    return "\n".join(lines).rstrip() + "\n"


def every_option(parsers: list[argparse.ArgumentParser] | None = None) -> Iterator[tuple[str, str]]:
    """(command, option string or positional name) for every argument of every command."""
    parsers = build_parsers() if parsers is None else parsers
    for parser in parsers:
        for command in commands(parser):
            for action in options(command.parser):
                for name in action.option_strings or [invocation(command.parser, action)]:
                    yield command.name, name

