"""The driver's peak RSS against the corpus size (issue #23's target), not a test.

    python tests/distributed/measure_driver_rss.py --files 10 100 --file-mb 2 \
        [--workers 2] [--batch-size 64] [--workdir /tmp/ctxext-rss] [--output FILE] [--one-file]

For each file count, writes that many JSONL files of ``--file-mb`` MB each (docs of ~2 KB
of LitBank-like English, no ids), then runs ``python -m spacy_ctxext.distributed`` on the
folder in a child process with a blank English pipeline (the tokenizer only: the driver's
memory does not depend on the model, and a cheap one keeps the run short), which starts
its own local Ray. The driver's peak RSS is its kernel high-water mark (``VmHWM`` in
``/proc/PID/status``, read every 0.2 s until it exits): the driver process alone, not
Ray's raylet, object store or workers. ``--one-file`` writes the same docs as one JSONL
file instead (the only input that versions before #23 take, for a comparison: run it with
that version first on PYTHONPATH).
"""

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import spacy

WORDS = (
    "the of and to a in was he that it his her with as had for she you not on at but be is "
    "him by they said which all from this one were have so me my we an there their no when "
    "Holmes London Baker Street Captain Ahab Paris Bank England Mary Peter ship island ."
).split()


def write_corpus(folder: Path, n_files: int, file_mb: float, one_file: bool) -> Path:
    """``n_files`` JSONL files of ``file_mb`` MB of ~2 KB docs (or all of them in one
    file); returns the input to pass."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    target = int(file_mb * 2**20)
    for f in range(n_files):
        lines, size = [], 0
        while size < target:
            text = " ".join(rng.choice(WORDS) for _ in range(400))
            line = json.dumps({"text": text}) + "\n"
            lines.append(line)
            size += len(line)
        name = "all.jsonl" if one_file else f"part-{f:04d}.jsonl"
        with (folder / name).open("a", encoding="utf8") as out:
            out.write("".join(lines))
    return folder / "all.jsonl" if one_file else folder


MEMORY_FIELDS = ("VmHWM", "RssAnon", "RssFile", "RssShmem")


def memory_mb(pid: int) -> Dict[str, float]:
    """The process's peak RSS (VmHWM) and its resident memory now by kind: anonymous
    (its heap), file-backed, and shared memory (Ray's object store mapped in)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {k: int(values[k].split()[0]) / 1024 for k in MEMORY_FIELDS if k in values}


def run(model: Path, corpus: Path, out: Path, workers: int, batch_size: int) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "spacy_ctxext.distributed", str(model), str(corpus), str(out)]
    cmd += ["--workers", str(workers), "--batch-size", str(batch_size), "--quiet"]
    start = time.perf_counter()
    log = out.with_suffix(".log")
    with log.open("w") as sink:  # a file, not a pipe: a full pipe would block the child
        child = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        peaks: Dict[str, float] = dict.fromkeys(MEMORY_FIELDS, 0.0)
        while child.poll() is None:
            for kind, mb in memory_mb(child.pid).items():
                peaks[kind] = max(peaks[kind], mb)
            time.sleep(0.2)
    if child.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{log.read_text()[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "driver_peak_rss_mb": round(peaks["VmHWM"], 1),
        # sampled every 0.2 s, so a peak between samples can be missed (VmHWM cannot)
        "peak_anon_mb": round(peaks["RssAnon"], 1),
        "peak_file_mb": round(peaks["RssFile"], 1),
        "peak_shmem_mb": round(peaks["RssShmem"], 1),
        "wall_s": round(time.perf_counter() - start, 1),
        "docs": summary["docs"],
        "words": summary["words"],
        "docs_per_second": round(summary["docs"] / summary["seconds"], 1),
        "words_per_second": round(summary["words_per_second"]),
        "check_seconds": round(summary.get("check_seconds", 0.0), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--file-mb", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ctxext-rss"))
    parser.add_argument("--output", type=Path)
    parser.add_argument("--one-file", action="store_true", help="the docs in one JSONL file")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.workdir / "blank_en"
    spacy.blank("en").to_disk(model)
    rows = []
    for n_files in args.files:
        name = f"{n_files}{'-one' if args.one_file else ''}"
        folder = args.workdir / f"corpus-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(args.workdir / f"out-{name}", ignore_errors=True)
        corpus = write_corpus(folder, n_files, args.file_mb, args.one_file)
        corpus_bytes = sum(p.stat().st_size for p in folder.iterdir())
        row = {"files": n_files, "one_file": args.one_file}
        row["corpus_mb"] = round(corpus_bytes / 2**20, 1)
        row.update(run(model, corpus, args.workdir / f"out-{name}", args.workers, args.batch_size))
        print(json.dumps(row), flush=True)
        rows.append(row)
    first, last = rows[0], rows[-1]
    growth = last["driver_peak_rss_mb"] - first["driver_peak_rss_mb"]
    corpus_growth = last["corpus_mb"] - first["corpus_mb"]
    result = {
        "rows": rows,
        "rss_growth_mb": round(growth, 1),
        "corpus_growth_mb": round(corpus_growth, 1),
        "rss_growth_share_of_corpus_growth": round(growth / corpus_growth, 4),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
