"""An annotate run's parts: the docs annotated so far, kept so that an interrupted run
resumes where it stopped.

    OUTPUT/parts/run.json                  what the run is (input, model, settings)
    OUTPUT/parts/entities/part-000000.jsonl  the entities.jsonl lines of the part's docs
    OUTPUT/parts/docs/part-000000.spacy      their annotated Docs (a DocBin)
    OUTPUT/parts/manifest/part-000000.jsonl  one row per doc: id (a string), n_entities

The parts are written and committed as the Ray runner's are (``part_folder``), numbered in
input order. The final outputs are assembled from them once every doc is in one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List

from spacy.tokens import Doc, DocBin

from ..io_atomic import write_text
from .part_folder import COMMIT, PartFolder

__all__ = ["PARTS_FOLDER", "PartStore", "PendingPart", "RunMismatchError"]

PARTS_FOLDER = "parts"
SUFFIXES = {"entities": ".jsonl", "docs": ".spacy", "manifest": ".jsonl"}
NUMBERED = r"part-\d{6}"


class RunMismatchError(ValueError):
    """The parts in the output folder belong to another run (input, model or settings)."""


class PartStore(PartFolder):
    """The parts folder of one output folder: written part by part, read back in order."""

    def __init__(self, output_dir: Path) -> None:
        super().__init__(Path(output_dir) / PARTS_FOLDER, SUFFIXES, NUMBERED)
        self.run_file = self.root / "run.json"
        self.next_part = 0

    def exists(self) -> bool:
        return self.run_file.is_file()

    def start(self, run: Dict[str, Any]) -> None:
        """Begin a fresh run: no parts, the run's record."""
        self.remove()
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)
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
        self.drop_uncommitted()
        committed = [int(name.removeprefix("part-")) for name in self.part_names(COMMIT)]
        self.next_part = max(committed, default=-1) + 1
        return [row for path in self.part_paths(COMMIT) for row in _read_rows(path)]

    def write(self, part: PendingPart) -> None:
        """Write the next part: its entity lines, its DocBin, then its manifest (the commit)."""
        manifest = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in part.rows)
        files = {
            "entities": "".join(part.lines).encode("utf8"),
            "docs": part.docs.to_bytes(),
            COMMIT: manifest.encode("utf8"),
        }
        self.write_part(f"part-{self.next_part:06d}", files)
        self.next_part += 1

    def remove(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)


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


def _read_rows(path: Path) -> Iterator[Dict[str, Any]]:
    with path.open(encoding="utf8") as f:
        for line in f:
            yield json.loads(line)
