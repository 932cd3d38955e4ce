"""Channels: per-token signals (casing, any token attribute, gazetteer tags, layout)
fused into the encoder's input embeddings, as LayoutLM does.

A channel maps each spaCy token to one id, or a few (layout: one per coordinate),
in ``[0, n_values)``. The encoder keeps one zero-initialised embedding table for all
its channels; every wordpiece of a token gets the sum of the token's channel
embeddings added to its word embedding before the first layer (special tokens and
padding get nothing), so a fresh model computes exactly what the pretrained encoder
does. Channels are configured in ``channels`` of
``spacy-ctxext.ContextExtendedTransformer.v4`` and registered in spaCy's ``misc``
registry (the built-in ones are in ``channels.builtins``), so users add their own:

    @spacy.registry.misc("my.channel.v1")
    def my_channel() -> Channel: ...
"""

import copy
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
from spacy.tokens import Doc, Token

from ..saved_parts import reading


class Channel:
    """One per-token signal: its ids, the vocabulary they need, and the state to save.

    Subclasses set ``n_values`` (at ``initialize`` at the latest) and implement
    ``token_ids``; a channel whose ids depend on the training data (a vocabulary)
    builds it in ``initialize`` and saves it through ``to_state``/``from_state``.
    """

    n_values: int = 0
    name: str = ""  # its key in ``channels``, set when the encoder is built (for errors)

    def initialize(self, docs: Sequence[Doc]) -> None:
        """Build what the ids depend on from the training docs (once, before training)."""

    def token_ids(self, doc: Doc) -> np.ndarray:
        """(len(doc),) or (len(doc), k) integer ids in ``[0, n_values)``; k ids are summed."""
        raise NotImplementedError

    def batch_token_ids(self, docs: Sequence[Doc]) -> np.ndarray:
        """``token_ids`` of the docs end to end; a channel overrides it where a batch
        costs less than its docs one by one."""
        ids = [np.asarray(self.token_ids(doc)) for doc in docs]
        ids = [i.reshape(len(doc), 1) if i.ndim < 2 else i for i, doc in zip(ids, docs)]
        return np.concatenate(ids) if ids else np.zeros((0, 1), dtype=np.int64)

    def to_state(self) -> Dict[str, Any]:
        """What ``initialize`` learned, msgpack-serializable; saved with the pipeline."""
        return {}

    def from_state(self, state: Dict[str, Any]) -> None:
        """Restore what ``to_state`` returned."""


Channels = Mapping[str, Channel]


def named_channels(channels: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``channels`` with each channel a shallow copy named by its key (the name its
    errors use): the objects passed in are left as they were. Values that are not
    channels are kept for ``table_rows`` to report."""
    named: Dict[str, Any] = {}
    for key, channel in (channels or {}).items():
        if isinstance(channel, Channel):
            channel = copy.copy(channel)
            channel.name = key
        named[key] = channel
    return named


def ordered(channels: Channels) -> List[str]:
    """The channels' names in table order: sorted, so the order a saved config lists
    them in never changes which rows of the table a channel owns."""
    return sorted(channels)


def table_rows(channels: Channels) -> int:
    """Rows of the shared embedding table: row 0 (nothing) and each channel's values."""
    return 1 + sum(_n_values(name, channels[name]) for name in ordered(channels))


def initialize_channels(channels: Channels, docs: Sequence[Doc]) -> None:
    for name in ordered(channels):
        channels[name].initialize(docs)
        _n_values(name, channels[name])


def channel_states(channels: Channels) -> Dict[str, Dict[str, Any]]:
    return {name: channels[name].to_state() for name in ordered(channels)}


def restore_states(channels: Channels, states: Mapping[str, Dict[str, Any]]) -> None:
    """Give the configured channels the states saved with the pipeline."""
    if sorted(states) != ordered(channels):
        raise ValueError(
            f"The saved encoder was trained with channels {sorted(states)}, but the config's "
            f"`channels` has {ordered(channels)}: load it with the "
            "channels it was trained with."
        )
    for name, state in states.items():
        with reading(f"the vocabulary of channel {name!r}"):
            channels[name].from_state(state)


def channel_rows(channels: Channels, docs: Sequence[Doc]) -> np.ndarray:
    """(tokens, k) int32 rows of the shared table for every token of the docs, end to
    end: each channel's ids shifted past row 0 and the channels before it (k: all
    channels' columns)."""
    n_tokens = sum(len(doc) for doc in docs)
    columns, offset = [], 1
    for name in ordered(channels):
        channel = channels[name]
        ids = np.asarray(channel.batch_token_ids(docs))
        ids = ids.reshape(n_tokens, 1) if ids.ndim < 2 else ids
        check_ids(name, channel.n_values, ids)
        columns.append(ids.astype(np.int64) + offset)
        offset += channel.n_values
    return np.concatenate(columns, axis=1).astype(np.int32)


def check_ids(name: str, n_values: int, ids: np.ndarray) -> None:
    if ids.size == 0:
        return
    bad = (ids < 0) | (ids >= n_values)
    if bad.any():
        raise ValueError(
            f"Channel {name!r} gave {int(bad.sum())} id(s) out of [0, {n_values}) "
            f"(min {int(ids.min())}, max {int(ids.max())}): its token_ids must stay within "
            "n_values; a custom channel sets n_values at initialize."
        )


def _n_values(name: str, channel: Channel) -> int:
    if not isinstance(channel, Channel):
        raise ValueError(
            f"channels[{name!r}] is a {type(channel).__name__}, not a channel: use a "
            'registered one (e.g. @misc = "spacy-ctxext.casing.v1") or subclass '
            "spacy_ctxext.channels.base.Channel."
        )
    if channel.n_values < 1:
        raise ValueError(f"Channel {name!r} has no values: call its initialize first.")
    return int(channel.n_values)


def extension_values(
    channel: str, attr: str, docs: Iterable[Doc], *, allow_none: bool = True
) -> List[List[Any]]:
    """``token._.<attr>`` of every token of each doc, with one clear error when the
    extension is not registered or (``allow_none=False``) tokens hold None."""
    if not Token.has_extension(attr):
        raise ValueError(
            f"Channel {channel!r} reads token._.{attr}, which is not registered: call "
            f"Token.set_extension({attr!r}, default=None) and set it on every token (in a "
            "component before ctx_ner, or when the docs are made) before training or use."
        )
    values = [[getattr(token._, attr) for token in doc] for doc in docs]
    if not allow_none:
        missing = sum(v is None for doc_values in values for v in doc_values)
        if missing:
            raise ValueError(
                f"Channel {channel!r}: {missing} token(s) have token._.{attr} = None: set "
                "it on every token (whitespace tokens included) before ctx_ner."
            )
    return values
