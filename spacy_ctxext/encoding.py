"""Plan a batch of docs as packed windows (numpy), then run it through the encoder (torch)."""

import warnings
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch
from spacy.tokens import Doc

from .heap import trim_heap
from .windows import Windows, pack_by_budget, plan_windows
from .wordpieces import DocPieces, tokenize_docs

# Batches of at least this many tokens return the heap memory their tokenization freed
# (a trim walks every malloc arena: not worth it after a short doc's few kilobytes).
TRIM_AFTER_TOKENS = 100_000


SENTENCE_END_MARKS = (".", "!", "?")


class NoSentencesWarning(UserWarning):
    """isolate_sentences is set but docs arrive without sentence boundaries."""


@dataclass(frozen=True)
class EncoderBatch:
    """One padded encoder call and where its outputs go in the docs' token order."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    tokens: np.ndarray


@dataclass(frozen=True)
class BatchPlan:
    batches: List[EncoderBatch]
    empty_tokens: np.ndarray
    doc_lengths: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.doc_lengths.sum())


def plan_batch(
    docs: Sequence[Doc],
    backend,
    *,
    specials: Tuple[List[int], List[int]],
    pad_id: int,
    window: int,
    context: int,
    batch_wordpieces: int,
    isolate_sentences: bool = False,
) -> BatchPlan:
    """Tokenize the docs once, cut them into windows, and pack all windows by length."""
    prefix, suffix = specials
    n_special = len(prefix) + len(suffix)
    if isolate_sentences:
        _warn_if_unsentenced(docs)
    pieces = tokenize_docs(backend, docs)
    plans = [
        plan_windows(
            len(p),
            p.token_starts,
            p.sentence_starts,
            window=window - n_special,
            context=context,
            isolate_sentences=isolate_sentences,
        )
        for p in pieces
    ]
    lengths = np.concatenate([w.lengths for w in plans] + [np.zeros(0, np.int64)]) + n_special
    token_window, token_col, empty_tokens = _locate_tokens(pieces, plans, len(prefix))
    groups = pack_by_budget(lengths, batch_wordpieces)
    batch_of_window = np.zeros(len(lengths), dtype=np.int64)
    row_of_window = np.zeros(len(lengths), dtype=np.int64)
    for b, members in enumerate(groups):
        batch_of_window[members] = b
        row_of_window[members] = np.arange(len(members))
    # Group the tokens by batch with one sort instead of one scan of all tokens per batch.
    placed = np.flatnonzero(token_window >= 0)
    placed = placed[np.argsort(batch_of_window[token_window[placed]], kind="stable")]
    bounds = np.searchsorted(batch_of_window[token_window[placed]], np.arange(len(groups) + 1))
    owners = _window_owners(plans)
    batches = []
    for b, members in enumerate(groups):
        tokens = placed[bounds[b] : bounds[b + 1]]
        input_ids, mask = _pad_windows(members, owners, pieces, plans, lengths, specials, pad_id)
        rows, cols = row_of_window[token_window[tokens]], token_col[tokens]
        batches.append(EncoderBatch(input_ids, mask, *_int32(rows, cols, tokens)))
    doc_lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
    if doc_lengths.sum() >= TRIM_AFTER_TOKENS:
        trim_heap()
    return BatchPlan(batches, empty_tokens, doc_lengths)


def _warn_if_unsentenced(docs: Sequence[Doc]) -> None:
    """Warn about docs that seem to hold several sentences but have no sentence starts.

    One-sentence docs need none: gold_preproc makes such docs, without sentence starts.
    """
    missing = sum(not doc.has_annotation("SENT_START") and _several_sentences(doc) for doc in docs)
    if missing:
        warnings.warn(
            f"isolate_sentences is set but {missing} of {len(docs)} docs hold several "
            "sentences and no sentence boundaries, so each is windowed by the window budget "
            "alone. Add a 'sentencizer' or 'senter' before ctx_ner, or train with "
            "[corpora.*] gold_preproc = true (spaCy's make_doc sets no sentence starts).",
            NoSentencesWarning,
            stacklevel=3,
        )


def _several_sentences(doc: Doc) -> bool:
    """Whether a sentence-final punctuation token comes before the doc's last token."""
    ends = [doc.vocab.strings[mark] for mark in SENTENCE_END_MARKS]
    return bool(np.isin(doc.to_array("ORTH")[:-1], ends).any())


def _locate_tokens(pieces: List[DocPieces], plans: List[Windows], n_prefix: int):
    """For every token of every doc: its window (global index) and column, or 'empty'."""
    windows, cols = [], []
    window_offset = 0
    for doc_pieces, plan in zip(pieces, plans):
        piece = doc_pieces.token_piece
        if len(plan) == 0:
            windows.append(np.full_like(piece, -1))
            cols.append(np.full_like(piece, -1))
            continue
        local = np.where(piece >= 0, plan.locate(np.maximum(piece, 0)), -1)
        col = np.where(piece >= 0, piece - plan.start[np.maximum(local, 0)] + n_prefix, -1)
        windows.append(np.where(local >= 0, local + window_offset, -1))
        cols.append(col)
        window_offset += len(plan)
    token_window = np.concatenate(windows + [np.zeros(0, np.int64)])
    token_col = np.concatenate(cols + [np.zeros(0, np.int64)])
    return token_window, token_col, np.flatnonzero(token_window < 0)


def _pad_windows(members, owners, pieces, plans, lengths, specials, pad_id):
    doc_of_window, local_of_window = owners
    prefix, suffix = specials
    width = int(lengths[members].max())
    input_ids = np.full((len(members), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(members), width), dtype=np.int32)
    for row, g in enumerate(members):
        d, k = doc_of_window[g], local_of_window[g]
        plan = plans[d]
        seq = np.concatenate([prefix, pieces[d].ids[plan.start[k] : plan.end[k]], suffix])
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


def _int32(*arrays: np.ndarray) -> List[np.ndarray]:
    """A plan holds a million-word doc's batches until they run: half size, widened per call."""
    return [a.astype(np.int32) for a in arrays]


def _window_owners(plans: List[Windows]):
    counts = [len(p) for p in plans]
    doc_of_window = np.repeat(np.arange(len(plans)), counts)
    local_of_window = np.concatenate([np.arange(c) for c in counts] + [np.zeros(0, np.int64)])
    return doc_of_window, local_of_window.astype(np.int64)


def run_plan(net, plan: BatchPlan, *, use_head: bool, autocast_dtype=None) -> torch.Tensor:
    """Encode every batch and return one output row per token, in the docs' token order.

    Each batch's rows go straight into one output allocated up front: holding every
    batch's output until the end interleaves small live blocks with the freed
    activations, and glibc's heap then grows with the number of batches instead of
    reusing one batch's memory (measured on a 100k-word doc: RSS rose 239 MB, now 140).
    """
    device = net.empty.device
    width = net.head.out_features if use_head else net.width
    outputs = torch.zeros((plan.n_tokens, width), device=device)
    for batch in plan.batches:
        out, tokens = _run_batch(net, batch, use_head, autocast_dtype)
        outputs[as_long(tokens, device)] = out
    if len(plan.empty_tokens):
        empty = as_long(plan.empty_tokens, device)
        outputs[empty] = net.empty_output(use_head).expand(len(empty), -1)
    return outputs


def as_long(array: np.ndarray, device) -> torch.Tensor:
    """An index or id array as the int64 tensor torch and HF encoders expect."""
    return torch.from_numpy(array).to(device=device, dtype=torch.long)


def _encode_batch(net, batch: EncoderBatch, use_head: bool, autocast_dtype) -> torch.Tensor:
    device = net.empty.device
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        out = net(
            as_long(batch.input_ids, device),
            as_long(batch.attention_mask, device),
            as_long(batch.rows, device),
            as_long(batch.cols, device),
            use_head,
        )
    return out.float()


def _run_batch(net, batch: EncoderBatch, use_head: bool, autocast_dtype):
    """One batch's outputs and their tokens; at inference, halve the batch on CUDA OOM.

    Splitting only changes how many windows share an encoder call, not what a window
    reads, so the outputs are those of the whole batch. In training the activations
    of the batches already run are held for backprop: splitting would not free them.
    """
    try:
        return _encode_batch(net, batch, use_head, autocast_dtype), batch.tokens
    except torch.cuda.OutOfMemoryError as err:
        reason = str(err).splitlines()[0] if str(err) else "out of memory"
    # Outside the except block: the failed call's frames (and tensors) are released.
    n_rows, width = batch.input_ids.shape
    if torch.is_grad_enabled() or n_rows == 1:
        raise torch.cuda.OutOfMemoryError(_oom_message(n_rows, width, reason))
    if net.empty.device.type == "cuda":
        torch.cuda.empty_cache()
    halves = [_run_batch(net, half, use_head, autocast_dtype) for half in split_batch(batch)]
    return torch.cat([out for out, _ in halves]), np.concatenate([t for _, t in halves])


def _oom_message(n_rows: int, width: int, reason: str) -> str:
    if torch.is_grad_enabled():
        where = f"training on {n_rows} window(s) of {width} wordpieces"
        advice = "lower `batch_wordpieces` (padded wordpieces per encoder call), the training "
        advice += "batch size, or `window`"
    else:
        where = f"encoding a single window of {width} wordpieces (no smaller batch exists)"
        advice = "lower `window` (and `context`), or `batch_wordpieces` if other batches fill "
        advice += "the device, or run on a device with more memory"
    return f"CUDA ran out of memory {where}: {advice}. ({reason})"


def split_batch(batch: EncoderBatch) -> Tuple[EncoderBatch, EncoderBatch]:
    """The batch's windows (rows) in two halves, with their tokens and rows renumbered."""
    middle = len(batch.input_ids) // 2
    halves = []
    for low, high in ((0, middle), (middle, len(batch.input_ids))):
        keep = (batch.rows >= low) & (batch.rows < high)
        halves.append(
            EncoderBatch(
                input_ids=batch.input_ids[low:high],
                attention_mask=batch.attention_mask[low:high],
                rows=batch.rows[keep] - low,
                cols=batch.cols[keep],
                tokens=batch.tokens[keep],
            )
        )
    return halves[0], halves[1]
