"""Output written in parts, each committed whole, so that a run that stops (Ctrl-C, a
crash, a lost node) leaves whole parts only and the next run goes on after them. Both
command lines that annotate a corpus write this way: ``annotation.parts`` (``annotate``,
one process) and ``distributed.output.store`` (the Ray runner, written by its actors).

    ROOT/KIND/NAME.SUFFIX    one file per kind ("entities", "docs", "manifest") and part

- each file is written under a hidden temporary name and renamed (``io_atomic``);
- a part's manifest file, one row per doc with its id as a string, is written last: it is
  the commit. A part without one was being written when its writer stopped;
  ``drop_uncommitted`` removes its files and the temporary ones before a run goes on;
- the docs in committed manifests are done: a rerun leaves them out.

What each writer keeps as its own, and why:

- part names: ``annotate`` numbers its parts (``part-000000``), as its final outputs are
  its parts joined in input order. The Ray runner's actors, on many nodes, share no
  counter, and a batch that Ray retries must rewrite its own part, not add a copy: its
  names are the run's id and a hash of the docs' ids (``name_pattern`` admits both).
- formats: JSONL lines and DocBins, joined into one output at the end; Parquet, which
  dataset readers read as one table, for corpora too large to join.
- which docs a rerun skips: ``annotate`` resumes by position (the input's first docs must
  be the committed ones, its settings those in ``run.json``), so that its outputs are byte
  for byte an uninterrupted run's; the Ray runner reads in no fixed order and resumes by
  id, per input file, under a lock on the output (``distributed.output.lock``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, List, Mapping, Union

from ..io_atomic import atomic_path, remove_temporary_files

__all__ = ["ANY_PART_NAME", "COMMIT", "FileContent", "PartFolder"]

COMMIT = "manifest"
ANY_PART_NAME = r"part-[0-9A-Za-z-]+"
FileContent = Union[bytes, Callable[[Path], None]]  # the bytes, or what writes them to a path


class PartFolder:
    """The parts under ``root``: ``suffixes`` gives each kind's file suffix, the manifest's
    among them; files whose names do not match ``name_pattern`` are not parts."""

    def __init__(
        self,
        root: Union[str, Path],
        suffixes: Mapping[str, str],
        name_pattern: str = ANY_PART_NAME,
    ) -> None:
        if COMMIT not in suffixes:
            raise ValueError(
                f"A part folder needs a {COMMIT!r} kind, the file that commits a part; "
                f"got the kinds {sorted(suffixes)}. Add {COMMIT!r} with its suffix."
            )
        self.root = Path(root)
        self.suffixes = dict(suffixes)
        self.folders = {kind: self.root / kind for kind in self.suffixes}
        self.name_pattern = re.compile(name_pattern)

    def path(self, kind: str, name: str) -> Path:
        return self.folders[kind] / f"{name}{self.suffixes[kind]}"

    def part_names(self, kind: str) -> List[str]:
        """The names of the parts with a file of ``kind``, sorted; committed ones for the
        manifest."""
        folder, suffix = self.folders[kind], self.suffixes[kind]
        if not folder.is_dir():
            return []
        names = (p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))
        return sorted(name for name in names if self.name_pattern.fullmatch(name))

    def part_paths(self, kind: str) -> List[Path]:
        return [self.path(kind, name) for name in self.part_names(kind)]

    def write_part(self, name: str, files: Mapping[str, FileContent]) -> None:
        """Write the part's file of each kind in ``files``, each atomically, the manifest
        last: once it is renamed into place the part is committed."""
        if COMMIT not in files:
            raise ValueError(f"part {name} has no {COMMIT!r} file: it would never be committed")
        for kind in sorted(files, key=lambda kind: kind == COMMIT):
            content = files[kind]
            with atomic_path(self.path(kind, name)) as tmp:
                if isinstance(content, bytes):
                    tmp.write_bytes(content)
                else:
                    content(tmp)

    def drop_uncommitted(self) -> List[Path]:
        """Remove the files of the parts without a manifest, and the temporary files of
        interrupted writes; returns the part files removed."""
        committed = set(self.part_names(COMMIT))
        removed = []
        for kind, folder in self.folders.items():
            for name in self.part_names(kind):
                if name not in committed:
                    path = self.path(kind, name)
                    path.unlink()
                    removed.append(path)
            if folder.is_dir():
                remove_temporary_files(folder)
        return removed

    def remove_part(self, name: str) -> None:
        """Delete a part, its manifest first: stopped midway, it is left uncommitted."""
        for kind in sorted(self.suffixes, key=lambda kind: kind != COMMIT):
            self.path(kind, name).unlink(missing_ok=True)
