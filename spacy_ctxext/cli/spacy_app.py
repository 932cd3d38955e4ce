"""The command lines as ``spacy ctxext COMMAND``, beside spaCy's own commands.

spaCy's ``setup_cli`` loads every ``spacy_cli`` entry point before it builds its command
line (``registry.cli.get_all()``), so importing this module is what adds the ``ctxext``
group to ``spacy``; setup.cfg names it. spaCy imports it on every ``spacy`` command, so it
imports no command's module until that command runs (they bring in torch and the scorers).

Each command hands its arguments, ``--help`` included, to the same argparse ``main`` that
``python -m spacy_ctxext.cli.NAME`` runs: one parser per command, whichever way it is called.

    spacy ctxext evaluate MODEL DATA.spacy [--output NAME.json] [--seen TRAIN.spacy]
"""

from __future__ import annotations

import importlib

import typer
from spacy.cli._util import app

__all__ = ["ctxext_cli"]

# name -> the help line `spacy ctxext --help` lists (each parser's own is longer).
COMMANDS = {
    "annotate": "Annotate raw text with any pipeline.",
    "convert": "Convert CoNLL NER files to DocBins.",
    "evaluate": "Score a pipeline's entities on gold docs.",
    "gazetteer": "Write a gazetteer of a DocBin's entities.",
}
# Everything after the command name goes to its argparse parser untouched: click neither
# parses options it does not know nor answers --help itself.
FORWARD = {"allow_extra_args": True, "ignore_unknown_options": True}

ctxext_cli = typer.Typer(
    name="ctxext",
    help="spacy-ctxext's command lines.",
    no_args_is_help=True,
)
app.add_typer(ctxext_cli)


def _forward(name: str) -> None:
    def command(ctx: typer.Context) -> None:
        module = importlib.import_module(f"{__package__}.{name}")
        module.main(list(ctx.args), prog=f"spacy ctxext {name}")

    register = ctxext_cli.command(
        name, help=COMMANDS[name], context_settings=FORWARD, add_help_option=False
    )
    register(command)


for _name in COMMANDS:
    _forward(_name)
