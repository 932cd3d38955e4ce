"""Which files an input names: a file, a folder or a glob, on any filesystem pyarrow knows.

The driver lists the files (names and sizes, never their contents); Ray Data's readers
read them on the workers. Accepted:

- a file: ``corpus.jsonl``, ``corpus.parquet``, ``book.txt``, ``s3://bucket/corpus.jsonl``;
- a folder: the ``.jsonl``, ``.parquet`` or ``.txt`` files directly in it, all of one kind
  (a folder of ``.txt`` is one doc a file, as before);
- a glob: ``corpus/*.jsonl``, ``s3://bucket/shards/**/*.parquet`` (``*``, ``?`` and ``[]``
  within one path component, ``**`` for any number of folders); kinds may mix.

Each file's ``source`` (what ids and resume key on) is its path relative to the folder,
or to the glob's folder before its first wildcard; a single-file input's is its name.
"""

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Sequence, Tuple

from pyarrow import fs

KINDS = (".jsonl", ".parquet", ".txt")
WILDCARDS = set("*?[")


class InputError(ValueError):
    """The input cannot be read as a corpus: the message says what is wrong and the fix."""


@dataclass
class Sources:
    """The files of one input, as the workers will read them."""

    filesystem: Any  # a pyarrow.fs.FileSystem; the paths below are in it
    base: str  # the folder that ``source`` names are relative to
    paths: List[str]
    sizes: List[int]
    single: bool  # one file: ids as the single-file inputs always had (line / row numbers)
    sources: List[str] = field(init=False)

    def __post_init__(self) -> None:
        self.sources = [relative(path, self.base) for path in self.paths]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    def select(self, keep: Sequence[str]) -> "Sources":
        """The same input reduced to the files whose source is in ``keep``."""
        wanted = set(keep)
        pairs = [(p, s) for p, s, src in zip(self.paths, self.sizes, self.sources) if src in wanted]
        return Sources(
            self.filesystem, self.base, [p for p, _ in pairs], [s for _, s in pairs], self.single
        )


def relative(path: str, base: str) -> str:
    return path[len(base) :].lstrip("/") if base and path.startswith(base) else path


def resolve(spec: str) -> Sources:
    """The files of the input ``spec``; ``InputError`` if it names none or a bad mix."""
    filesystem, path = _filesystem(str(spec))
    if any(c in WILDCARDS for c in path):
        return _glob(filesystem, path, spec)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.File:
        _check_kind([path], spec)
        base = str(PurePosixPath(path).parent)
        return Sources(filesystem, base, [path], [info.size], single=True)
    if info.type == fs.FileType.Directory:
        return _folder(filesystem, path, spec)
    raise InputError(f"{spec}: no such file or folder (for a glob, quote it from the shell)")


def _filesystem(spec: str) -> Tuple[Any, str]:
    """A URI (``s3://``, ``gs://``, ``hdfs://``, ``file://``) or a local path."""
    if "://" in spec:
        try:
            return fs.FileSystem.from_uri(spec)
        except Exception as err:  # pyarrow raises several types for unknown or bad URIs
            raise InputError(f"{spec}: pyarrow cannot open this URI ({err})") from err
    return fs.LocalFileSystem(), str(Path(spec).expanduser().resolve())


def _folder(filesystem: Any, folder: str, spec: str) -> Sources:
    infos = filesystem.get_file_info(fs.FileSelector(folder, recursive=False))
    files = sorted(
        (i for i in infos if i.type == fs.FileType.File and _is_doc_file(i.path)),
        key=lambda i: i.path,
    )
    kinds = _count_kinds(i.path for i in files)
    if len(kinds) > 1:
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        raise InputError(
            f"{spec}: the folder holds files of several kinds ({found}); pass a glob such as "
            f"'{spec.rstrip('/')}/*.jsonl' to choose"
        )
    return _sources(filesystem, folder, files, spec, "folder")


def _glob(filesystem: Any, pattern: str, spec: str) -> Sources:
    parts = PurePosixPath(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if any(c in WILDCARDS for c in part))
    base = str(PurePosixPath(*parts[:fixed])) if fixed else ""
    wanted = parts[fixed:]
    recursive = len(wanted) > 1 or "**" in wanted
    try:
        infos = filesystem.get_file_info(fs.FileSelector(base, recursive=recursive))
    except FileNotFoundError as err:
        raise InputError(f"{spec}: the folder {base} does not exist") from err
    files = sorted(
        (
            i
            for i in infos
            if i.type == fs.FileType.File
            and _is_doc_file(i.path)
            and match_parts(PurePosixPath(relative(i.path, base)).parts, wanted)
        ),
        key=lambda i: i.path,
    )
    return _sources(filesystem, base, files, spec, "glob")


def _sources(filesystem: Any, base: str, files: List[Any], spec: str, what: str) -> Sources:
    if not files:
        raise InputError(f"{spec}: the {what} matches no {', '.join(KINDS)} file")
    paths = [i.path for i in files]
    return Sources(filesystem, base, paths, [i.size for i in files], single=False)


def match_parts(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Path components against glob components; ``**`` matches zero or more components."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(match_parts(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and match_parts(parts[1:], pattern[1:])
    )


def _is_doc_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return not name.startswith((".", "_")) and PurePosixPath(name).suffix in KINDS


def _count_kinds(paths: Any) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for path in paths:
        suffix = PurePosixPath(path).suffix
        counts[suffix] = counts.get(suffix, 0) + 1
    return counts


def _check_kind(paths: List[str], spec: str) -> None:
    if not all(PurePosixPath(p).suffix in KINDS for p in paths):
        raise InputError(
            f"{spec}: expected a .jsonl, .parquet or .txt file, a folder of them or a glob"
        )
