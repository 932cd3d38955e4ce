"""`spacy package` of a trained ctx_ner installs and loads offline, with the same output."""

import json
import os
import subprocess
import sys

import pytest
from spacy.cli.package import package

PROBE = """
import json, sys, spacy
nlp = spacy.load("en_ctxext_tiny")
ents = [[(e.start_char, e.end_char, e.label_) for e in nlp(t).ents] for t in sys.argv[1:]]
print(json.dumps(ents))
"""


@pytest.mark.slow
def test_package_installs_and_loads_offline(trained, tmp_path):
    nlp, _ = trained
    texts = ["John Smith visited New York on Monday .", "Mary told Peter about Paris ."]
    expected = [[[e.start_char, e.end_char, e.label_] for e in nlp(t).ents] for t in texts]
    nlp.meta["name"] = "ctxext_tiny"
    nlp.meta["version"] = "0.0.1"
    nlp.to_disk(tmp_path / "model")
    (tmp_path / "packages").mkdir()
    package(tmp_path / "model", tmp_path / "packages", create_sdist=False, create_wheel=False)
    package_dir = tmp_path / "packages" / "en_ctxext_tiny-0.0.1"
    meta = json.loads((package_dir / "meta.json").read_text())
    assert any(r.startswith("spacy-ctxext") for r in meta["requirements"])
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(package_dir)],
        check=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *texts], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
