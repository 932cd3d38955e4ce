"""A saved ctx_ner's files (``cfg``, ``model``), written with a record of the spacy-ctxext
version that saved them and of the model file's size and sha256, and read back checked: a
missing, truncated or corrupt file gives one ``SavedPipelineError`` naming the pipeline
folder, the file and the fix, and a pipeline saved by another version says which.

Pipelines saved before the record existed load as before (nothing to compare with).
Torch-free: the model's own loading names the part that failed (``saved_parts``).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

import srsly
from spacy.pipeline import TrainablePipe

from ..io_atomic import atomic_path, write_bytes
from ..saved_parts import SavedPartError, describe

__all__ = ["SavedPipelineError", "SavedVersionWarning", "load_component", "save_component"]

VERSION_KEY = "ctxext_version"
MODEL_FILE_KEY = "model_file"  # {"bytes": size, "sha256": hex digest} of the model file
FIX = (
    "Re-copy or re-package the pipeline: copy the whole folder that nlp.to_disk wrote again "
    "(or reinstall its package)"
)


def ctxext_version() -> str:
    """This spacy-ctxext's version (imported here: the package imports this module)."""
    from .. import __version__

    return __version__


class SavedPipelineError(ValueError):
    """A saved ctx_ner component that cannot be loaded; the message names the file."""


class SavedVersionWarning(UserWarning):
    """The pipeline was saved by another spacy-ctxext version than the one loading it."""


def save_component(pipe: TrainablePipe, path: Path, exclude: Iterable[str]) -> None:
    """Write the component as ``TrainablePipe.to_disk`` does, each file atomically, its
    ``cfg`` with the version and the model file's record."""
    exclude = set(exclude)
    pipe._validate_serialization_attrs()
    path.mkdir(parents=True, exist_ok=True)
    record: Dict[str, Any] = {VERSION_KEY: ctxext_version()}
    model_bytes = b"" if "model" in exclude else pipe.model.to_bytes()
    if "model" not in exclude:
        record[MODEL_FILE_KEY] = _file_record(model_bytes)
    if "cfg" not in exclude:
        with atomic_path(path / "cfg") as tmp:
            srsly.write_json(tmp, {**pipe.cfg, **record})
    if "vocab" not in exclude:
        pipe.vocab.to_disk(path / "vocab", exclude=exclude)
    if "model" not in exclude:
        write_bytes(path / "model", model_bytes)


def load_component(pipe: TrainablePipe, path: Path, exclude: Iterable[str]) -> None:
    """Read the component as ``TrainablePipe.from_disk`` does; a file that is missing or
    does not read raises one ``SavedPipelineError`` naming it and the fix."""
    exclude = set(exclude)
    pipe._validate_serialization_attrs()
    saved: Dict[str, Any] = {}
    if "cfg" not in exclude:
        saved = _read_cfg(pipe, path / "cfg")
        pipe.cfg.update({k: v for k, v in saved.items() if k not in (VERSION_KEY, MODEL_FILE_KEY)})
    version = saved.get(VERSION_KEY)
    if "vocab" not in exclude:
        pipe.vocab.from_disk(path / "vocab", exclude=exclude)
    if "model" not in exclude:
        _read_model(pipe, path / "model", saved.get(MODEL_FILE_KEY), version)
    current = ctxext_version()
    if version is not None and version != current:
        warnings.warn(
            f"{path} was saved by spacy-ctxext {version}; this is {current}. It loaded; if "
            f"its predictions look wrong, install spacy-ctxext=={version} to use it as "
            f"saved, or re-train it with {current}.",
            SavedVersionWarning,
            stacklevel=4,
        )


def _read_cfg(pipe: TrainablePipe, file: Path) -> Dict[str, Any]:
    if not file.is_file():
        raise _error(pipe, file, "is missing", None)
    try:
        saved = srsly.read_json(file)
    except ValueError as err:
        problem = f"is not valid JSON: truncated or corrupt ({describe(err)})"
        raise _error(pipe, file, problem, None) from None
    labels = saved.get("labels") if isinstance(saved, dict) else None
    if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
        raise _error(pipe, file, 'holds no "labels" list of strings: it is corrupt', None)
    return saved


def _read_model(
    pipe: TrainablePipe, file: Path, record: Optional[Dict[str, Any]], version: Optional[str]
) -> None:
    if not file.is_file():
        raise _error(pipe, file, "is missing", version)
    data = file.read_bytes()
    if record is not None and len(data) != record.get("bytes"):
        cut = "truncated" if len(data) < record["bytes"] else "longer than saved"
        problem = f"is {cut}: {len(data):,} bytes, {record['bytes']:,} when it was saved"
        raise _error(pipe, file, problem, version)
    if record is not None and _file_record(data)["sha256"] != record.get("sha256"):
        problem = "is corrupt: its sha256 differs from the one recorded when it was saved"
        raise _error(pipe, file, problem, version)
    try:
        pipe.model.from_bytes(data)
    except SavedPartError as err:
        problem = f"does not read ({err})"
        raise _error(pipe, file, problem, version, intact=record is not None) from None
    except Exception as err:  # thinc's own msgpack and structure checks
        intact = record is not None
        what = "does not load" if intact else "is not a ctx_ner model file"
        raise _error(pipe, file, f"{what} ({describe(err)})", version, intact=intact) from None


def _error(
    pipe: TrainablePipe,
    file: Path,
    problem: str,
    version: Optional[str],
    *,
    intact: bool = False,
) -> SavedPipelineError:
    """The one error of a failed load: the pipeline folder, the file, the problem, the fix."""
    folder = file.parent.parent
    message = f"Cannot load the {pipe.name!r} component of the pipeline in {folder}: {file} "
    message += f"{problem}. "
    if intact:  # the bytes are those saved, so the copy is not at fault: the setup is
        message += (
            "The file is as it was saved (its size and sha256 match), so it does not fit this "
            "config or installation: load it with the config.cfg saved beside it. "
        )
    else:
        message += f"{FIX}. "
    current = ctxext_version()
    if version is not None and version != current:
        message += (
            f"It was saved by spacy-ctxext {version}; this is {current}: if the files are "
            f"intact, install spacy-ctxext=={version} to load it, or re-train it with {current}."
        )
    return SavedPipelineError(message.strip())


def _file_record(data: bytes) -> Dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
