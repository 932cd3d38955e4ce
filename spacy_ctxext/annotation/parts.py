"""An annotate run's parts: the docs annotated so far, kept so that an interrupted run
resumes where it stopped.

    OUTPUT/parts/run.json                  what the run is (input, model, settings)
    OUTPUT/parts/entities/part-000000.jsonl  the entities.jsonl lines of the part's docs
    OUTPUT/parts/docs/part-000000.spacy      their annotated Docs (a DocBin)
    OUTPUT/parts/manifest/part-000000.jsonl  one row per doc: id (a string), n_entities

As in the Ray path (``distributed.output.store``), each file is written under a hidden
temporary name and renamed, a part's manifest is written last and is its commit, ids are
strings, and a part without its manifest is removed on the next run. The final outputs
are assembled from the parts once every doc is in one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List

from spacy.tokens import Doc, DocBin

from ..io_atomic import remove_temporary_files, write_bytes, write_text

__all__ = ["PARTS_FOLDER", "PartStore", "PendingPart", "RunMismatchError"]

PARTS_FOLDER = "parts"
PART = re.compile(r"^part-(\d{6})\.(jsonl|spacy)$")
KINDS = ("entities", "docs", "manifest")
SUFFIX = {"entities": ".jsonl", "docs": ".spacy", "manifest": ".jsonl"}


class RunMismatchError(ValueError):
    """The parts in the output folder belong to another run (input, model or settings)."""


class PartStore:
    """The parts folder of one output folder: written part by part, read back in order."""

    def __init__(self, output_dir: Path) -> None:
        self.root = Path(output_dir) / PARTS_FOLDER
        self.run_file = self.root / "run.json"
        self.next_part = 0

    def exists(self) -> bool:
        return self.run_file.is_file()

    def start(self, run: Dict[str, Any]) -> None:
        """Begin a fresh run: no parts, the run's record."""
        self.remove()
        for kind in KINDS:
            (self.root / kind).mkdir(parents=True, exist_ok=True)
        write_text(self.run_file, json.dumps(run, indent=2, sort_keys=True) + "\n")
        self.next_part = 0

    def recover(self, run: Dict[str, Any]) -> List[Dict[str, Any]]:
        """The manifest rows of the committed parts, in order, after removing uncommitted
        parts and temporary files; ``RunMismatchError`` if the parts are another run's."""
        saved = json.loads(self.run_file.read_text(encoding="utf8"))
        differ = sorted(key for key in set(run) | set(saved) if run.get(key) != saved.get(key))
        if differ:
            was = ", ".join(f"{key}={saved.get(key)!r} (now {run.get(key)!r})" for key in differ)
            raise RunMismatchError(
                f"{self.root} holds the parts of an interrupted run with other settings: "
                f"{was}. Run the command as before to resume it, or pass --restart to "
                "start over (the parts are then removed)."
            )
        committed = {_number(p) for p in self._files("manifest")}
        for kind in KINDS:
            remove_temporary_files(self.root / kind)
            for path in self._files(kind):
                if _number(path) not in committed:
                    path.unlink()  # written before the run stopped, never committed
        self.next_part = max(committed, default=-1) + 1
        return [row for path in self._files("manifest") for row in _read_rows(path)]

    def write(self, part: PendingPart) -> None:
        """Write the next part: its entity lines, its DocBin, then its manifest (the commit)."""
        name = f"part-{self.next_part:06d}"
        write_text(self.root / "entities" / f"{name}.jsonl", "".join(part.lines))
        write_bytes(self.root / "docs" / f"{name}.spacy", part.docs.to_bytes())
        manifest = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in part.rows)
        write_text(self.root / "manifest" / f"{name}.jsonl", manifest)
        self.next_part += 1

    def entity_files(self) -> List[Path]:
        return self._files("entities")

    def docbin_files(self) -> List[Path]:
        return self._files("docs")

    def remove(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    def _files(self, kind: str) -> List[Path]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if PART.match(p.name))


class PendingPart:
    """The docs of the part being annotated, until it is written."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.docs = DocBin(store_user_data=True)
        self.rows: List[Dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, doc: Doc, doc_id: Any, entities: List[Dict[str, Any]]) -> None:
        """Add an annotated doc: its line of entities.jsonl, the Doc, its manifest row."""
        record = {"id": doc_id, "entities": entities}
        self.lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        self.docs.add(doc)
        self.rows.append({"id": str(doc_id), "n_entities": len(entities)})


def _number(path: Path) -> int:
    match = PART.match(path.name)
    assert match is not None  # _files lists only part names
    return int(match.group(1))


def _read_rows(path: Path) -> Iterator[Dict[str, Any]]:
    with path.open(encoding="utf8") as f:
        for line in f:
            yield json.loads(line)
