"""Fixtures of the Ray tests: a tiny offline ctx_ner with test components, saved once.

The components are registered in the test process and, through ``RunConfig.code`` /
``--code``, in every actor.
"""

import os
import textwrap

import pytest
import spacy
from spacy.training import Example
from util import TRAIN_DATA, make_nlp

# Usage stats off. With them on, a driver that joins a cluster (test_cluster.py) starts
# Ray Data's usage poller, a thread that outlives ray.shutdown and logs a traceback at
# DEBUG every few seconds (no Prometheus here). On CPython 3.11 formatting one runs
# ast.parse, whose depth counter before 3.11.8 is shared between threads (cpython
# gh-106905): test_extras' ast.parse failed with "AST constructor recursion depth mismatch".
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

CODE = textwrap.dedent(
    '''
    import json
    import os
    import time
    from pathlib import Path

    from spacy.language import Language


    @Language.factory("test_fail_on_marker", default_config={"healed": ""})
    def make_fail(nlp, name, healed):
        """FAILME docs raise until the file ``healed`` exists (for --retry-failed)."""
        def fail(doc):
            if "FAILME" in doc.text and not Path(healed).exists():
                raise ValueError("marked to fail")
            return doc

        return fail


    @Language.factory("test_die_once", default_config={"marker": ""})
    def make_die(nlp, name, marker):
        """Kill the actor's process on the first KILLME doc; the marker file lets the retry pass."""
        def die(doc):
            if "KILLME" in doc.text and not Path(marker).exists():
                Path(marker).touch()
                os._exit(1)
            return doc

        return die


    @Language.factory("test_where", default_config={"folder": "", "seconds": 0.0})
    def make_where(nlp, name, folder, seconds):
        """In an actor: record which node and which spacy_ctxext it runs; SLOWME docs sleep."""
        def where(doc):
            import ray

            in_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id()
            if "SLOWME" in doc.text and in_actor:
                time.sleep(seconds)
            if folder and in_actor:
                import spacy_ctxext

                record = {
                    "node": ray.get_runtime_context().get_node_id(),
                    "package": spacy_ctxext.__file__,
                }
                Path(folder, f"{os.getpid()}.json").write_text(json.dumps(record))
            return doc

        return where
    '''
)


@pytest.fixture(scope="session")
def code_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("code") / "components.py"
    path.write_text(CODE, encoding="utf8")
    spacy.util.import_file("ctxext_test_components", str(path))
    return str(path)


@pytest.fixture(scope="session")
def model_dir(tiny_bert, code_file, tmp_path_factory):
    """A briefly trained ctx_ner + the test components, saved to disk; actors record where
    they ran in ``model_dir.parent / "procs"``; FAILME docs fail until ``model_dir.parent /
    "healed"`` exists."""
    folder = tmp_path_factory.mktemp("distributed")
    (folder / "procs").mkdir()
    nlp = make_nlp(tiny_bert)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    for _ in range(40):
        nlp.update(examples, sgd=optimizer)
    nlp.add_pipe("test_fail_on_marker", config={"healed": str(folder / "healed")})
    nlp.add_pipe("test_die_once", config={"marker": str(folder / "killed")})
    nlp.add_pipe("test_where", config={"folder": str(folder / "procs"), "seconds": 1.0})
    nlp.to_disk(folder / "model")
    return folder / "model"
