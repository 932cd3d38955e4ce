"""annotate writes in parts and resumes an interrupted run (issue #25): no output is ever
partial under its final name, a resumed run gives the outputs of an uninterrupted one."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from util import REPO

from spacy_ctxext.annotation.parts import RunMismatchError
from spacy_ctxext.annotation.records import doc_entities
from spacy_ctxext.annotation.resume import FINAL_NAMES, RunSummary
from spacy_ctxext.cli.annotate import annotate, main

PATTERNS = [{"label": "PER", "pattern": "John Smith"}, {"label": "LOC", "pattern": "Paris"}]
N_DOCS = 20
SETTINGS = {"batch_size": 2, "part_docs": 4}


@Language.factory("test_stop_once", default_config={"after": 10, "error": "interrupt"})
def make_stop_once(nlp, name, after, error):
    """Raises once, at doc ``after + 1``: Ctrl-C ("interrupt") or a crash ("crash")."""
    state = {"seen": 0, "fired": False}

    def stop_once(doc):
        state["seen"] += 1
        if state["seen"] > after and not state["fired"]:
            state["fired"] = True
            raise KeyboardInterrupt if error == "interrupt" else ValueError("doc too odd")
        return doc

    return stop_once


def ruler(stop=None):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    if stop:
        nlp.add_pipe("test_stop_once", config=stop)
    return nlp


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": f"d{i}", "text": f"John Smith went to Paris {i} times."})
        for i in range(N_DOCS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def finals(out):
    return {name: (out / name).read_bytes() for name in FINAL_NAMES if (out / name).exists()}


def reference(source, out):
    """The outputs as annotate wrote them before parts existed: one pass, one DocBin."""
    nlp, doc_bin, lines = ruler(), DocBin(store_user_data=True), []
    records = [json.loads(line) for line in source.read_text(encoding="utf8").splitlines()]
    pairs = [(r["text"], r["id"]) for r in records]
    for doc, doc_id in nlp.pipe(pairs, batch_size=2, as_tuples=True):
        doc.user_data["id"] = doc_id
        record = {"id": doc_id, "entities": doc_entities(doc)}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        doc_bin.add(doc)
    annotate(nlp, source, out, batch_size=2, part_docs=1000, html=True)  # for the page
    return {
        "entities.jsonl": "".join(lines).encode("utf8"),
        "annotations.spacy": doc_bin.to_bytes(),
        "entities.html": (out / "entities.html").read_bytes(),
    }


def interrupted(source, out, error="interrupt"):
    """A run stopped after 10 docs: 8 are in two parts, 2 were in the part being filled."""
    nlp, summary = ruler({"after": 10, "error": error}), RunSummary()
    raised = KeyboardInterrupt if error == "interrupt" else ValueError
    with pytest.raises(raised):
        annotate(nlp, source, out, **SETTINGS, html=True, summary=summary)
    assert finals(out) == {}  # nothing under a final name
    assert (summary.annotated, summary.skipped, summary.total) == (8, 0, N_DOCS)
    return nlp


def test_interrupted_run_resumes_to_the_outputs_of_an_uninterrupted_one(source, tmp_path):
    expected = reference(source, tmp_path / "reference")
    out = tmp_path / "out"
    nlp = interrupted(source, out)
    lines = []
    result = annotate(nlp, source, out, **SETTINGS, html=True, report=lines.append)
    resuming = f"resuming: 8 of {N_DOCS} docs already done in {out / 'parts'}"
    assert lines == [f"{resuming} (add --restart to start over)"]
    assert (result["skipped"], result["annotated"], result["docs"]) == (8, 12, N_DOCS)
    assert finals(out) == expected  # byte for byte, every doc once
    assert not (out / "parts").exists()


def test_parts_give_the_outputs_of_one_pass(source, tmp_path):
    expected = reference(source, tmp_path / "reference")
    annotate(ruler(), source, tmp_path / "out", **SETTINGS, html=True)
    assert finals(tmp_path / "out") == expected


def test_crash_exits_1_and_says_what_is_saved(source, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(
        "spacy_ctxext.cli.annotate.load_pipeline", lambda *a: ruler({"error": "crash"})
    )
    with pytest.raises(SystemExit) as caught:
        main(["model", str(source), str(out), "-b", "2", "--part-docs", "4"])
    err = capsys.readouterr().err
    assert caught.value.code == 1 and "error: doc too odd" in err
    assert f"8 of {N_DOCS} docs are saved in {out / 'parts'}" in err and "resume" in err
    assert finals(out) == {}


def test_restart_starts_over_and_says_so(source, tmp_path):
    out = tmp_path / "out"
    nlp = interrupted(source, out)
    lines = []
    result = annotate(nlp, source, out, **SETTINGS, restart=True, report=lines.append)
    assert "--restart: removed the parts of an earlier run" in lines[0]
    assert (result["skipped"], result["annotated"]) == (0, N_DOCS)


def test_resume_with_other_settings_is_refused(source, tmp_path):
    out = tmp_path / "out"
    nlp = interrupted(source, out)
    with pytest.raises(
        RunMismatchError, match=r"parts of an interrupted run .*batch_size=2 \(now 4\)"
    ):
        annotate(nlp, source, out, batch_size=4, part_docs=4)
    assert finals(out) == {} and (out / "parts" / "run.json").exists()


def test_resume_on_a_changed_input_is_refused(source, tmp_path):
    out = tmp_path / "out"
    nlp = interrupted(source, out)
    text = source.read_text(encoding="utf8").replace('"d0"', '"other"')
    source.write_text(text, encoding="utf8")
    with pytest.raises(RunMismatchError, match=rf"{source}: doc 1 has id 'other'.*--restart"):
        annotate(nlp, source, out, **SETTINGS)
    assert finals(out) == {}


def test_uncommitted_part_and_temporary_files_are_dropped(source, tmp_path):
    out = tmp_path / "out"
    nlp = interrupted(source, out)
    parts = out / "parts"
    (parts / "entities" / "part-000002.jsonl").write_text('{"id": "d8"}\n', encoding="utf8")
    (parts / "docs" / ".part-000002.spacy.tmp").write_bytes(b"half")
    annotate(nlp, source, out, **SETTINGS)
    ids = [json.loads(line)["id"] for line in (out / "entities.jsonl").open(encoding="utf8")]
    assert ids == [f"d{i}" for i in range(N_DOCS)]


def test_rerun_of_a_complete_run_says_it_replaces_it(source, tmp_path):
    out = tmp_path / "out"
    annotate(ruler(), source, out, **SETTINGS)
    lines = []
    annotate(ruler(), source, out, **SETTINGS, report=lines.append)
    assert "removed the outputs of an earlier run (entities.jsonl, annotations.spacy)" in lines[0]


def run_annotate(args, *, setup="", **kwargs):
    """``python -m spacy_ctxext.cli.annotate ARGS`` in a subprocess, after ``setup``."""
    code = (
        f"import sys; sys.path[:0] = [{str(REPO / 'tests')!r}, {str(REPO / 'tests' / 'cli')!r}]\n"
        f"{setup}\n"
        f"sys.argv = ['annotate'] + {[str(a) for a in args]!r}\n"
        "import runpy; runpy.run_module('spacy_ctxext.cli.annotate', run_name='__main__')"
    )
    return subprocess.Popen([sys.executable, "-c", code], text=True, **kwargs)


# Only a guard against a hang: the tests below wait on files, never on elapsed time.
DEADLINE_SECONDS = 300.0


@Language.factory("test_wait_for_ctrl_c", default_config={"marker": "", "after": 8})
def make_wait_for_ctrl_c(nlp, name, marker, after):
    """At doc ``after + 1`` of the first run (no ``marker`` yet): write ``marker``, then wait
    for the Ctrl-C the test sends on seeing it. A rerun finds the marker and waits for nothing."""
    state = {"seen": 0}

    def wait_for_ctrl_c(doc):
        state["seen"] += 1
        if state["seen"] == after + 1 and not Path(marker).exists():
            Path(marker).touch()
            end = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < end:
                time.sleep(0.05)  # SIGINT raises KeyboardInterrupt here
            raise RuntimeError(f"no Ctrl-C came within {DEADLINE_SECONDS:.0f}s")
        return doc

    return wait_for_ctrl_c


def wait_for(path, proc):
    """Until ``path`` exists; fails if ``proc`` exits first or the deadline passes."""
    end = time.monotonic() + DEADLINE_SECONDS
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"annotate exited {proc.returncode} before {path.name} existed")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"{path.name} did not appear within {DEADLINE_SECONDS:.0f}s")
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_rerun_resumes(source, tmp_path):
    """Ctrl-C while the 9th doc is in the pipeline: its first 8 docs are in two parts."""
    model, marker = tmp_path / "waiting", tmp_path / "waiting-for-ctrl-c"
    nlp = ruler()
    nlp.add_pipe("test_wait_for_ctrl_c", config={"marker": str(marker)})
    nlp.to_disk(model)
    out = tmp_path / "out"
    args = [model, source, out, "-b", "2", "--part-docs", "4"]
    setup = "import test_annotate_resume"  # registers test_wait_for_ctrl_c
    proc = run_annotate(args, setup=setup, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE_SECONDS)
    assert proc.returncode == 130, err
    assert f"interrupted: 8 of {N_DOCS} docs are saved in {out / 'parts'}" in err
    assert finals(out) == {}
    again = run_annotate(args, setup=setup, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, _ = again.communicate(timeout=DEADLINE_SECONDS)
    assert again.returncode == 0, stdout
    assert f"resuming: 8 of {N_DOCS} docs already done" in stdout
    assert finals(out) == {
        k: v for k, v in reference(source, tmp_path / "ref").items() if k != "entities.html"
    }


@pytest.mark.slow
def test_file_size_limit_fails_clearly_and_leaves_no_partial_output(source, tmp_path):
    """EFBIG (as ENOSPC): the parts fit under the limit, the final entities.jsonl does not."""
    model = tmp_path / "ruler"
    ruler().to_disk(model)
    out = tmp_path / "out"
    limit = 2_000  # one part of 4 docs is ~1 kB; entities.jsonl ~5 kB
    setup = f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))"
    proc = run_annotate(
        [model, source, out, "-b", "2", "--part-docs", "4"], setup=setup, stderr=subprocess.PIPE
    )
    _, err = proc.communicate(timeout=DEADLINE_SECONDS)
    assert proc.returncode == 1
    assert f"Could not write {out / 'entities.jsonl'}: File too large" in err
    assert "Nothing was left under that name" in err and "ulimit -f" in err
    assert finals(out) == {} and not list(out.glob(".*.tmp"))
    again = run_annotate(
        [model, source, out, "-b", "2", "--part-docs", "4"], stdout=subprocess.PIPE
    )
    stdout, _ = again.communicate(timeout=DEADLINE_SECONDS)
    assert again.returncode == 0 and f"resuming: {N_DOCS} of {N_DOCS} docs" in stdout
    assert set(finals(out)) == {"entities.jsonl", "annotations.spacy"}
