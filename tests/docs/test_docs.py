"""The generated references stay complete and current: an undocumented key, command or option fails.

docs/configuration.md and docs/cli.md are generated (`make docs`); these tests fail when either
is not what the generators render now (a new key, command or option without regenerating),
when a configuration field has no description or a CLI argument no help, and when the
skeleton `edge install-service` writes misses a key.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import Field

from edge.config import EdgeConfig
from edge.config.base import SECTION_CONFIG, Section
from edge.config.reference import every_key, render_markdown, sections, undocumented
from edge.operate.service import render_config_skeleton
from tests.docs import cli_reference
from tests.docs.generate import REPO, generated

DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def parsers() -> list[argparse.ArgumentParser]:
    return cli_reference.build_parsers()


@pytest.fixture(scope="module")
def cli_doc(parsers) -> str:
    return cli_reference.render_markdown(parsers)


def _stale(path: Path) -> str:
    return f"{path.relative_to(REPO)} is stale: run `make docs` (python -m tests.docs.generate) and commit it"


# ---- configuration -------------------------------------------------------------------------

def test_configuration_reference_is_current():
    path = DOCS / "configuration.md"
    expected = render_markdown()
    assert path.read_text(encoding="utf-8") == expected, _stale(path)


def test_every_section_and_key_has_a_description():
    assert undocumented() == []


def test_a_key_without_a_description_is_caught():
    class Inner(Section):
        documented: int = Field(1, description="says what it does")
        silent: int = 2

    class Root(Section):
        inner: Inner = Field(default_factory=Inner)
        quiet: Inner = Field(default_factory=Inner, description="a section")

    assert undocumented(Root) == ["inner", "inner.silent", "quiet.silent"]


def test_every_model_is_a_strict_section():
    assert issubclass(EdgeConfig, Section)
    for section in sections():
        assert issubclass(section.model, Section), section.name
        assert section.model.model_config["extra"] == SECTION_CONFIG["extra"] == "forbid"
        assert section.model.model_config["strict"] is SECTION_CONFIG["strict"] is True


def test_configuration_reference_has_a_row_for_every_key():
    text = render_markdown()
    blocks = re.split(r"^## ", text, flags=re.M)
    by_heading = {block.split("\n", 1)[0].strip("[]"): block for block in blocks[1:]}
    for key in every_key():
        block = by_heading[key.section]
        assert f"| `{key.name}` |" in block, key.dotted
        if key.env is not None:
            assert f"`{key.env}`" in block, key.dotted


def _skeleton_blocks(text: str) -> dict[str, str]:
    parts = re.split(r"^# ---- \[\[?([a-z_]+)\]\]? -+$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_install_service_skeleton_shows_every_key_in_its_section():
    text = render_config_skeleton()
    blocks = _skeleton_blocks(text)
    assert list(blocks) == list(EdgeConfig.model_fields)
    for key in every_key():
        indent = "  " if key.array else ""
        line = re.compile(rf"^#{indent} {key.name} =", re.M)
        assert line.search(blocks[key.section]), f"{key.dotted} missing from the skeleton"
        first_words = " ".join((key.info.description or "").split()[:3])
        assert first_words in " ".join(blocks[key.section].replace("#", " ").split()), key.dotted


def test_skeleton_and_reference_show_the_keys_of_nested_tables():
    """[cameras.deployment] and [[project.contributors]] are documented key by key, and the
    skeleton's commented tables turn into a valid configuration once uncommented."""
    from edge.config.reference import sections

    text = render_config_skeleton()
    reference = (DOCS / "configuration.md").read_text(encoding="utf-8")
    nested = [table for section in sections() for table in section.subtables()]
    assert {table.name for table in nested} >= {"cameras.deployment", "project.contributors"}
    for table in nested:
        heading = f"[[{table.name}]]" if table.array else f"[{table.name}]"
        assert f"# {heading}" in text and f"### {heading}" in reference, table.name
        for key in table.keys():
            assert re.search(rf"^#   {key.name} =", text, re.M), f"{table.name}.{key.name} missing from the skeleton"
            assert f"| `{key.name}` |" in reference.split(f"### {heading}", 1)[1], f"{table.name}.{key.name}"


def test_skeleton_with_a_camera_and_model_filled_in_is_a_valid_config(tmp_path):
    """As an operator does: uncomment the [[cameras]] table, give name, path and model."""
    model = tmp_path / "bundle"
    text = render_config_skeleton()
    text = text.replace("# [[cameras]]   (repeat the table for each entry)", "[[cameras]]")
    text = text.replace("#   name = ...   (required)", 'name = "feeder"', 1)  # the camera's (first) table
    # path or source (a live camera): neither is required on its own, path is the folder one.
    text = text.replace("#   path =   (unset by default)", f'path = "{tmp_path}"', 1)
    text = text.replace("# path =   (unset by default)", f'path = "{model}"')
    config = EdgeConfig.model_validate(tomllib.loads(text))
    assert [c.name for c in config.cameras] == ["feeder"] and config.model.path == model
    assert config.cameras[0].path == tmp_path and config.cameras[0].source is None


# ---- command line --------------------------------------------------------------------------

def test_cli_reference_is_current(cli_doc):
    path = DOCS / "cli.md"
    assert path.read_text(encoding="utf-8") == cli_doc, _stale(path)


def _command_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^#{2,4} `([^`]+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_command_and_option_is_in_the_cli_reference(parsers):
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = _command_sections(text)
    names = [command.name for parser in parsers for command in cli_reference.commands(parser)]
    assert {"edge run", "edge install-service", "trainer tune", "trainer sagemaker fetch"} <= set(names)
    missing = [name for name in names if name not in documented]
    assert not missing, f"commands missing from docs/cli.md: {missing}"
    absent = [f"{command} {option}" for command, option in cli_reference.every_option(parsers)
              if f"`{option}" not in documented[command]]
    assert not absent, f"options missing from docs/cli.md: {absent}"


def test_every_command_and_argument_has_help(parsers):
    silent = []
    for parser in parsers:
        for command in cli_reference.commands(parser):
            if command.depth and not command.help:
                silent.append(command.name)
            silent += [f"{command.name} {cli_reference.invocation(command.parser, action)}"
                       for action in cli_reference.options(command.parser) if not action.help]
    assert not silent, f"commands and arguments without help: {silent}"


def test_an_undocumented_option_is_caught(parsers, cli_doc):
    parser = argparse.ArgumentParser(prog="edge")
    sub = parser.add_subparsers()
    run = sub.add_parser("run", help="run")
    run.add_argument("--brand-new-flag", help="new")
    documented = _command_sections(cli_doc)
    options = list(cli_reference.every_option([parser]))
    assert ("edge run", "--brand-new-flag") in options
    assert "`--brand-new-flag" not in documented["edge run"]


def test_cli_reference_does_not_depend_on_the_environment(monkeypatch, cli_doc):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/x")
    assert cli_reference.render_markdown() == cli_doc


def test_parsers_build_without_tensorflow(cli_env):
    code = ("import sys; from tests.docs.cli_reference import build_parsers; build_parsers(); "
            "loaded = [m for m in ('tensorflow', 'keras', 'optuna') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=cli_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_generator_check_mode_agrees(cli_env):
    assert set(generated()) == {DOCS / "configuration.md", DOCS / "cli.md"}
    result = subprocess.run([sys.executable, "-m", "tests.docs.generate", "--check"], cwd=REPO, env=cli_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
