"""What a run did and how fast: the summary (``summary.json``) and the progress lines.

The driver adds each committed part's manifest rows (no texts, no entities) as they
arrive, so its memory does not grow with the corpus. Ray Data draws its own progress bars
per operator as well (reading, annotating); the lines here give docs/s and words/s.
"""

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import pyarrow as pa

PROGRESS_SECONDS = 10.0  # at most one line per this many seconds, and one at the end


@dataclass
class Summary:
    """What a run did; written to OUTPUT/summary.json and printed by the CLI."""

    docs: int = 0  # annotated by this run (ok or failed)
    skipped: int = 0  # already in the output (resume)
    failed: int = 0
    retried: int = 0  # failed earlier, annotated again (--retry-failed)
    input_docs: int = 0
    files: int = 0
    files_skipped: int = 0  # every doc committed: not read
    input_bytes: int = 0
    words: int = 0  # spaCy tokens of the docs annotated
    entities: int = 0
    seconds: float = 0.0  # from dataset creation to the last part written (Ray already up)
    first_result_seconds: Optional[float] = None  # actor start + model load + first batch
    ray_init_seconds: float = 0.0
    check_seconds: float = 0.0  # reading every file to validate it and check its ids
    workers: int = 1
    threads_per_worker: int = 1
    gpus_per_worker: float = 0.0
    ray_version: str = ""
    errors: Dict[str, str] = field(default_factory=dict)  # id -> error, first 100
    # The exactly-once check, per input file: docs reported beyond its count, or missing.
    duplicates: int = 0
    missing: int = 0
    missing_files: int = 0
    per_file: Dict[str, List[int]] = field(default_factory=dict, repr=False)  # [docs, seen]

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> Dict[str, Any]:
        rates = {"words_per_second": self.words_per_second, "docs_per_second": self.docs_per_second}
        fields = {k: v for k, v in asdict(self).items() if k != "per_file"}
        return {**fields, **rates}

    def add(self, manifest: pa.Table) -> None:
        """Count one committed part's manifest rows."""
        names = ("status", "n_tokens", "n_entities", "id", "error", "source", "file_docs")
        for status, n_tokens, n_entities, doc_id, error, source, file_docs in zip(
            *(manifest.column(c).to_pylist() for c in names)
        ):
            self.docs += 1
            self.per_file.setdefault(source, [file_docs, 0])[1] += 1
            if status == "ok":
                self.words += n_tokens
                self.entities += n_entities
            else:
                self.failed += 1
                if len(self.errors) < 100:
                    self.errors[doc_id] = error

    def check_once(self, committed_before: Dict[str, int], read: Sequence[str]) -> None:
        """Count, per file read, docs written more than once or not at all; the files'
        counts come from the read tasks, ``committed_before`` from the resume plan. A file
        of ``read`` that gave no doc and had none done before is counted in
        ``missing_files``."""
        for source, (file_docs, seen) in self.per_file.items():
            total = seen + committed_before.get(source, 0)
            self.duplicates += max(0, total - file_docs)
            self.missing += max(0, file_docs - total)
        self.missing_files = sum(
            1 for s in read if s not in self.per_file and not committed_before.get(s)
        )


class Progress:
    """Prints ``[ctxext] done/total docs, docs/s, words/s`` to stderr now and then."""

    def __init__(self, summary: Summary, total: int, enabled: bool) -> None:
        self.summary = summary
        self.total = total
        self.enabled = enabled
        self.start = time.perf_counter()
        self.last = self.start

    def update(self, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last < PROGRESS_SECONDS):
            return
        self.last = now
        s, elapsed = self.summary, max(now - self.start, 1e-9)
        print(
            f"[ctxext] {s.docs}/{self.total} docs written ({s.failed} failed), "
            f"{s.docs / elapsed:,.2f} docs/s, {s.words / elapsed:,.0f} words/s",
            file=sys.stderr,
        )


def format_summary(summary: Summary) -> str:
    """The closing lines a user reads: how much, how fast, what failed."""
    lines = [
        f"{summary.docs} docs annotated ({summary.skipped} already done, {summary.failed} failed"
        f"{f', {summary.retried} retried' if summary.retried else ''}), "
        f"{summary.words:,} words, {summary.entities:,} entities in {summary.seconds:.1f}s: "
        f"{summary.docs_per_second:,.2f} docs/s, {summary.words_per_second:,.0f} words/s "
        f"({summary.workers} workers x {summary.threads_per_worker} threads)"
    ]
    lines += [f"  failed {doc_id}: {error}" for doc_id, error in list(summary.errors.items())[:10]]
    return "\n".join(lines)
