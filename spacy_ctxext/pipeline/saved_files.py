"""A saved ctx_ner's files (``cfg``, ``model``), written with a record of the spacy-ctxext
version that saved them and of the model file's size and sha256, and read back checked: a
missing, truncated or corrupt file gives one ``SavedPipelineError`` naming the pipeline
folder, the file and the fix, and a pipeline saved by another version says which.

Pipelines saved before the record existed load as before (nothing to compare with).
Bytes (``nlp.to_bytes()``) have no record; a part of the model that does not read in them
gives a ``SavedPipelineError`` too. Torch-free: the model's own loading names the part
that failed (``saved_parts``).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

import srsly
from spacy.errors import Errors
from thinc.api import Model

from ..io_atomic import atomic_path
from ..saved_parts import SavedPartError, describe

__all__ = [
    "SavedFilesReader",
    "SavedPipelineError",
    "SavedVersionWarning",
    "load_model_bytes",
    "write_cfg",
]

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


def write_cfg(file: Path, cfg: Dict[str, Any], model_bytes: bytes) -> None:
    """Write ``cfg`` atomically, with the record of this spacy-ctxext's version and of the
    model file's size and sha256 (``model_bytes``; empty: no model file is saved)."""
    record: Dict[str, Any] = {VERSION_KEY: ctxext_version()}
    if model_bytes:
        record[MODEL_FILE_KEY] = _file_record(model_bytes)
    with atomic_path(file) as tmp:
        srsly.write_json(tmp, {**cfg, **record})


def load_model_bytes(model: Model, data: bytes, name: str) -> None:
    """``model.from_bytes(data)``, where a part that does not read raises
    ``SavedPipelineError`` (the bytes give no file to name)."""
    try:
        model.from_bytes(data)
    except SavedPartError as err:
        raise SavedPipelineError(
            f"Cannot load the {name!r} component from bytes: {err}. They are not "
            "the bytes nlp.to_bytes() gave: send or store them again, whole."
        ) from None
    except AttributeError:  # as spaCy's pipes: the model does not fit the config
        raise ValueError(Errors.E149) from None


class SavedFilesReader:
    """Reads one saved component's files (``cfg`` first: it holds the record that the
    model file is checked against); a file that is missing or does not read raises one
    ``SavedPipelineError`` naming it and the fix."""

    def __init__(self, name: str) -> None:
        """name: the component's, for the errors."""
        self.name = name
        self.version: Optional[str] = None
        self.model_file: Optional[Dict[str, Any]] = None

    def read_cfg(self, file: Path) -> Dict[str, Any]:
        """The saved ``cfg``, less the record, which this reader keeps."""
        if not file.is_file():
            raise _error(self.name, file, "is missing", None)
        try:
            saved = srsly.read_json(file)
        except ValueError as err:
            problem = f"is not valid JSON: truncated or corrupt ({describe(err)})"
            raise _error(self.name, file, problem, None) from None
        labels = saved.get("labels") if isinstance(saved, dict) else None
        if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
            problem = 'holds no "labels" list of strings: it is corrupt'
            raise _error(self.name, file, problem, None)
        self.version, self.model_file = saved.get(VERSION_KEY), saved.get(MODEL_FILE_KEY)
        return {k: v for k, v in saved.items() if k not in (VERSION_KEY, MODEL_FILE_KEY)}

    def load_model(self, model: Model, file: Path) -> None:
        """Load the model file into ``model``, checked against the record."""
        if not file.is_file():
            raise _error(self.name, file, "is missing", self.version)
        data, record = file.read_bytes(), self.model_file
        if record is not None and len(data) != record.get("bytes"):
            cut = "truncated" if len(data) < record["bytes"] else "longer than saved"
            problem = f"is {cut}: {len(data):,} bytes, {record['bytes']:,} when it was saved"
            raise _error(self.name, file, problem, self.version)
        if record is not None and _file_record(data)["sha256"] != record.get("sha256"):
            problem = "is corrupt: its sha256 differs from the one recorded when it was saved"
            raise _error(self.name, file, problem, self.version)
        try:
            model.from_bytes(data)
        except SavedPartError as err:
            problem = f"does not read ({err})"
            intact = record is not None
            raise _error(self.name, file, problem, self.version, intact=intact) from None
        except Exception as err:  # thinc's own msgpack and structure checks
            intact = record is not None
            what = "does not load" if intact else "is not a ctx_ner model file"
            problem = f"{what} ({describe(err)})"
            raise _error(self.name, file, problem, self.version, intact=intact) from None

    def warn_if_other_version(self, path: Path) -> None:
        """A ``SavedVersionWarning`` if another spacy-ctxext saved the component in ``path``."""
        current = ctxext_version()
        if self.version is not None and self.version != current:
            warnings.warn(
                f"{path} was saved by spacy-ctxext {self.version}; this is {current}. It "
                f"loaded; if its predictions look wrong, install spacy-ctxext=={self.version} "
                f"to use it as saved, or re-train it with {current}.",
                SavedVersionWarning,
                stacklevel=4,
            )


def _error(
    name: str,
    file: Path,
    problem: str,
    version: Optional[str],
    *,
    intact: bool = False,
) -> SavedPipelineError:
    """The one error of a failed load: the pipeline folder, the file, the problem, the fix."""
    folder = file.parent.parent
    message = f"Cannot load the {name!r} component of the pipeline in {folder}: {file} "
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
