"""Every ``python -m spacy_ctxext.MODULE`` and ``spacy ctxext COMMAND`` command line that
README.md and docs/*.md show (in code blocks or inline code) names a command that runs, and
every ``--flag`` shown for it is one its ``--help`` lists: the docs cannot drift from the
command lines."""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Group 1: what follows ``python -m`` to run it (a module, or spaCy's command and ours).
COMMAND = re.compile(
    r"(?:python3? -m (spacy_ctxext(?:\.[A-Za-z_]\w*)+)|(?<![\w.-])(?:python3? -m )?"
    r"(spacy ctxext [a-z]+))(.*)"
)
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`]+)`")
# A shell line goes on to another command after these; its flags are not the module's.
SHELL_BREAK = re.compile(r"\s(?:&&|\|\|?|;)\s|\s#")
# Each runs and is shown in the docs; an extraction that found fewer would be checking less
# than the docs show.
TOOLS = ("annotate", "convert", "evaluate", "gazetteer")
KNOWN = {
    "spacy_ctxext.benchmark",
    "spacy_ctxext.distributed",
    *(f"spacy_ctxext.cli.{name}" for name in TOOLS),
    *(f"spacy ctxext {name}" for name in TOOLS),
}


def shown_commands(text: str) -> Iterator[str]:
    """The command lines of ``text``: fenced lines (backslash continuations joined, shell
    comments and later commands cut off), then inline code spans outside the fences."""
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            for match in COMMAND.finditer(line):
                yield SHELL_BREAK.split(match.group(0))[0].rstrip()
    for span in INLINE.findall(FENCE.sub("", text)):
        for match in COMMAND.finditer(" ".join(span.split())):
            yield match.group(0).rstrip()


def documented() -> Dict[str, Dict[str, Set[str]]]:
    """Per command (the module, or ``spacy ctxext NAME``): each flag shown and where."""
    flags: Dict[str, Dict[str, Set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in DOCS:
        for command in shown_commands(path.read_text(encoding="utf8")):
            module, spacy_command, rest = re.fullmatch(COMMAND, command).groups()
            name = module or spacy_command
            flags[name].setdefault("", set()).add(path.name)
            for flag in FLAG.findall(rest):
                flags[name][flag].add(path.name)
    return flags


DOCUMENTED = documented()


def run_help(command: str) -> Tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", *command.split(), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_docs_show_every_command_line():
    assert KNOWN <= set(DOCUMENTED), f"extracted only {sorted(DOCUMENTED)}"


@pytest.mark.parametrize("command", sorted(DOCUMENTED))
def test_documented_flags_are_in_the_help(command):
    code, output = run_help(command)
    assert code == 0, f"python -m {command} --help exited {code}:\n{output}"
    listed = set(FLAG.findall(output))
    missing: List[str] = [
        f"{flag} (in {', '.join(sorted(where))})"
        for flag, where in sorted(DOCUMENTED[command].items())
        if flag and flag not in listed
    ]
    assert not missing, f"{command} --help lists no {'; '.join(missing)}"


def test_the_extraction_reads_blocks_and_inline_code():
    text = (
        "Run `python -m\nspacy_ctxext.cli.evaluate MODEL --seen X`, then:\n\n"
        "```bash\npython -m spacy_ctxext.cli.annotate M IN OUT \\\n    --html  # not --this\n"
        "python -m spacy_ctxext.cli.convert A B && spacy train --paths.x y\n"
        "spacy ctxext gazetteer T P --min-count 2\n```\n"
        "Or `python -m spacy ctxext convert A B --lang de`; not `spacy evaluate M D --gpu-id 0`."
    )
    assert list(shown_commands(text)) == [
        "python -m spacy_ctxext.cli.annotate M IN OUT      --html",
        "python -m spacy_ctxext.cli.convert A B",
        "spacy ctxext gazetteer T P --min-count 2",
        "python -m spacy_ctxext.cli.evaluate MODEL --seen X",
        "python -m spacy ctxext convert A B --lang de",
    ]
