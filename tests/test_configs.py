"""The shipped training configs: complete as they stand, and usable after training."""

from pathlib import Path

import pytest
from spacy import registry
from spacy.cli.debug_config import debug_config
from spacy.util import load_config
from thinc.api import Optimizer

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.cfg"))
# The anchors are stock spacy-transformers pipelines: building them needs the extra.
BUILDABLE = [
    pytest.param(
        path,
        id=path.stem,
        marks=[pytest.mark.spacy_transformers] if path.stem.startswith("anchor") else [],
    )
    for path in CONFIGS
]


@pytest.mark.parametrize("path", BUILDABLE)
def test_config_is_complete(path, tiny_bert, capsys):
    overrides = {"paths.encoder": tiny_bert}
    if "ctx_ner" in load_config(path)["components"]:
        overrides["components.ctx_ner.model.encoder.name"] = tiny_bert
    debug_config(path, overrides=overrides)  # exits with the errors if any field is missing
    # It got through all three validations ([nlp]+components, [initialize], [training]).
    out = capsys.readouterr().out
    assert "Config is valid" in out and "[training]" in out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_optimizer_resolves_on_its_own(path):
    # nlp.resume_training() and create_optimizer() resolve [training.optimizer] alone,
    # so it may not refer to other sections (${training.max_steps} made them fail).
    config = load_config(path, interpolate=False)
    optimizer = registry.resolve({"optimizer": config["training"]["optimizer"]})["optimizer"]
    assert isinstance(optimizer, Optimizer)
