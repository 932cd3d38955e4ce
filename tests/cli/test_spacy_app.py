"""``spacy ctxext NAME``: the ``spacy_cli`` entry point adds one spaCy command per command
line in ``spacy_ctxext/cli/``, each answering with that command line's own parser."""

import pkgutil
import subprocess
import sys
from importlib import import_module
from importlib.metadata import entry_points

import pytest

import spacy_ctxext.cli
from spacy_ctxext.cli.spacy_app import COMMANDS, ctxext_cli


def spacy(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "spacy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_every_command_line_is_a_spacy_command():
    modules = {
        info.name
        for info in pkgutil.iter_modules(spacy_ctxext.cli.__path__)
        if hasattr(import_module(f"spacy_ctxext.cli.{info.name}"), "main")
    }
    assert set(COMMANDS) == modules
    (ep,) = [ep for ep in entry_points(group="spacy_cli") if ep.name == "ctxext"]
    assert ep.load() is ctxext_cli, "reinstall (pip install -e .) after editing setup.cfg"


@pytest.mark.slow
def test_spacy_lists_the_group_and_its_commands():
    listed = spacy("--help")
    assert listed.returncode == 0 and "ctxext" in listed.stdout, listed.stderr
    group = spacy("ctxext", "--help")
    assert group.returncode == 0, group.stderr
    for name, help_line in COMMANDS.items():
        assert f"{name}  " in group.stdout and help_line in group.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_and_errors_come_from_the_command_lines_parser(name):
    shown = spacy("ctxext", name, "--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"usage: spacy ctxext {name} ")
    wrong = spacy("ctxext", name, "--no-such-flag")
    assert wrong.returncode == 2
    assert f"spacy ctxext {name}: error:" in wrong.stderr


def test_spacy_imports_no_command_until_one_runs():
    """spaCy loads the entry point on every ``spacy`` command: it must not bring in the
    command lines' modules (the scorers, the annotation writers)."""
    probe = (
        "import sys, spacy_ctxext.cli.spacy_app; "
        "print(sorted(m for m in sys.modules if m.startswith(('spacy_ctxext.cli.', "
        "'spacy_ctxext.scoring', 'spacy_ctxext.annotation'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['spacy_ctxext.cli.spacy_app']"
