"""Every entry point declared in setup.cfg resolves, to the function spaCy's registry gives
for its name (as spacy-curated-transformers' test_registry)."""

import configparser
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from spacy.util import registry

SETUP = Path(__file__).parent.parent / "setup.cfg"
# Registry names; spacy_span_getters' registry is spacy-transformers' (an extra).
REGISTRIES = {
    "spacy_factories": None,  # checked through Language.factories below
    "spacy_architectures": "architectures",
    "spacy_readers": "readers",
    "spacy_span_getters": "span_getters",
    "spacy_misc": "misc",
    "spacy_cli": "cli",  # the `spacy ctxext` group (a typer app, not a function)
}


def declared():
    parser = configparser.ConfigParser()
    parser.read(SETUP)
    section = parser["options.entry_points"]
    for group in section:
        for line in section[group].strip().splitlines():
            name, target = (part.strip() for part in line.split("=", 1))
            yield group, name, target


DECLARED = list(declared())
# spacy_span_getters' entries need spacy-transformers, which adds registry.span_getters.
DECLARED_PARAMS = [
    pytest.param(
        group,
        name,
        target,
        id=name,
        marks=[pytest.mark.spacy_transformers] if group == "spacy_span_getters" else [],
    )
    for group, name, target in DECLARED
]


def test_every_group_is_known_and_installed():
    assert {group for group, _, _ in DECLARED} == set(REGISTRIES)
    for group, name, target in DECLARED:
        installed = {ep.name: ep.value for ep in entry_points(group=group)}
        assert installed.get(name) == target, f"{group} {name}: reinstall (pip install -e .)"


@pytest.mark.parametrize("group,name,target", DECLARED_PARAMS)
def test_entry_point_resolves_to_the_registered_function(group, name, target):
    (ep,) = [ep for ep in entry_points(group=group) if ep.name == name]
    function = ep.load()
    assert callable(function)  # the spacy_cli group too: a typer app is callable
    if group == "spacy_factories":
        from spacy.language import Language

        assert Language.has_factory(name)
        assert Language.get_factory_meta(name).factory == name
    else:
        if group == "spacy_span_getters":
            import spacy_transformers  # noqa: F401  (adds registry.span_getters)
        assert getattr(registry, REGISTRIES[group]).get(name) is function
    assert not name.startswith("spacy.")


def test_the_package_registers_what_setup_cfg_declares_and_nothing_more():
    """One version of each registered function: a name registered by a decorator but not
    declared (say an older version kept alive) would load here and nowhere else."""
    import spacy_ctxext.channels.builtins  # noqa: F401  (their decorators register)
    import spacy_ctxext.models.architectures  # noqa: F401
    import spacy_ctxext.models.memory  # noqa: F401
    import spacy_ctxext.training.chunks  # noqa: F401
    import spacy_ctxext.training.readers  # noqa: F401

    for group, kind in REGISTRIES.items():
        if kind in (None, "cli") or not hasattr(registry, kind):
            # factories: above; span_getters: only with spacy-transformers; cli: no
            # decorator registers the group, the entry point is its only way in
            continue
        ours = {n for n in getattr(registry, kind).get_all() if n.startswith("spacy-ctxext.")}
        assert ours == {name for g, name, _ in DECLARED if g == group}, kind


def test_the_factory_entry_point_loads_no_model_code():
    """spaCy imports every factory entry point on each ``Language()``: ctx_ner's must not
    bring in the encoder layer, the net or transformers (a fresh interpreter, to see it)."""
    import subprocess
    import sys

    probe = (
        "import sys, spacy_ctxext.pipeline; "
        "print(sorted(m for m in sys.modules if m.startswith(('spacy_ctxext.models.', "
        "'transformers'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['spacy_ctxext.models.settings']"
