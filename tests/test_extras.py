"""spacy-transformers is an extra: one module imports it, and what needs it says so."""

import ast
import sys
from pathlib import Path

import pytest

from spacy_ctxext.extras import (
    SPACY_TRANSFORMERS_INSTALL,
    import_spacy_transformers,
    installed_version,
)

PACKAGE = Path(__file__).resolve().parents[1] / "spacy_ctxext"


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_only_extras_imports_spacy_transformers():
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] == "spacy_transformers" for m in imported_modules(path))
    }
    assert importers == set()  # extras.py imports it by name, through importlib
    assert "spacy_transformers" in (PACKAGE / "extras.py").read_text(encoding="utf8")


def test_a_missing_extra_says_what_needs_it_and_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy_transformers", None)  # import fails as if absent
    with pytest.raises(ImportError, match="The anchor needs spacy-transformers") as err:
        import_spacy_transformers("The anchor")
    assert SPACY_TRANSFORMERS_INSTALL in str(err.value)


def test_the_benchmark_anchor_without_the_extra(monkeypatch, tiny_bert):
    from spacy_ctxext.benchmark.pipelines import build_spacy_transformers

    monkeypatch.setitem(sys.modules, "spacy_transformers", None)
    with pytest.raises(ImportError, match=r"path \(b\).*spacy-ctxext\[spacy-transformers\]"):
        build_spacy_transformers(tiny_bert, gpu=False)


def test_installed_version():
    assert installed_version("spacy") is not None
    assert installed_version("no-such-distribution-xyz") is None
