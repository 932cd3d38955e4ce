"""The driver's peak RSS against the corpus size (issue #23's target), not a test.

    python tests/distributed/measure_driver_rss.py --files 10 100 --file-mb 4 \
        [--workers 2] [--workdir /tmp/ctxext-rss] [--output results.json]

For each file count, writes that many JSONL files of ``--file-mb`` MB each (docs of ~2 KB
of LitBank-like English, no ids), then runs ``python -m spacy_ctxext.distributed`` on the
folder in a child process with a blank English pipeline (the tokenizer only: the driver's
memory does not depend on the model, and a cheap one keeps the run short), which starts
its own local Ray. The driver's peak RSS is its kernel high-water mark (``VmHWM`` in
``/proc/PID/status``, read every 0.2 s until it exits): the driver process alone, not
Ray's raylet, object store or workers.
"""

import argparse
import json
import random
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


def write_corpus(folder: Path, n_files: int, file_mb: float, seed: int = 0) -> int:
    """``n_files`` JSONL files of ``file_mb`` MB of ~2 KB docs; returns the total bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    target = int(file_mb * 2**20)
    total = 0
    for f in range(n_files):
        lines, size = [], 0
        while size < target:
            text = " ".join(rng.choice(WORDS) for _ in range(400))
            line = json.dumps({"text": text}) + "\n"
            lines.append(line)
            size += len(line)
        (folder / f"part-{f:04d}.jsonl").write_text("".join(lines), encoding="utf8")
        total += size
    return total


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(model: Path, corpus: Path, out: Path, workers: int) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "spacy_ctxext.distributed", str(model), str(corpus), str(out)]
    cmd += ["--workers", str(workers), "--batch-size", "64", "--quiet"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0.0
    while child.poll() is None:
        peak = max(peak, peak_rss_mb(child.pid))
        time.sleep(0.2)
    output = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "driver_peak_rss_mb": round(peak, 1),
        "wall_s": round(time.perf_counter() - start, 1),
        "docs": summary["docs"],
        "words": summary["words"],
        "docs_per_second": round(summary["docs_per_second"], 1),
        "words_per_second": round(summary["words_per_second"]),
        "check_seconds": round(summary["check_seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--file-mb", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ctxext-rss"))
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    model = args.workdir / "blank_en"
    spacy.blank("en").to_disk(model)
    rows = []
    for n_files in args.files:
        corpus = args.workdir / f"corpus-{n_files}"
        corpus_bytes = write_corpus(corpus, n_files, args.file_mb)
        row = {"files": n_files, "corpus_mb": round(corpus_bytes / 2**20, 1)}
        row.update(run(model, corpus, args.workdir / f"out-{n_files}", args.workers))
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
