"""The host path (``--null-encoder``): everything ``ctx_ner`` does but the encoder.

The encoder's forward is replaced, through ``ContextNetShim.inference_encoder``, by a
null module that returns zeros of the encoder's output shape; the head, decoding and
annotations run as usual. This measures the rest of ``nlp.pipe``, which bounds what a
GPU can be fed. Each stage is timed apart on the same docs, by calling the functions
``ctx_ner`` calls, in its order: spaCy's tokenizer (``make_doc``), wordpiece tokenization
and alignment (``tokenize_docs``, timed alone as well), wordpieces with window planning
and padding (``plan_docs``, which tokenizes), device transfer (the int64 tensors of each
batch), the null encoder with the head and the scatter into token order (``run_plan``
minus the transfer: on a GPU these are device kernels, so they are reported apart from
the host stages), decoding (``decode_docs``) and ``set_annotations``. ``nlp.pipe`` is
also timed whole, from texts and from Docs made beforehand.

``--host-stages`` instead runs the pipeline's own encoder once per distinct batch and
replays its outputs after that (``ReplayEncoder``): decoding and ``set_annotations``
then see a trained model's real tags (they depend on how many entities it finds), while
the timed rounds spend nothing on the encoder, as a host feeding a GPU would not.

``stages`` starts each round with an empty word cache (``word_cache``), as a fresh
process reading these docs would: only repeats within the docs hit it.
``stages_warm_cache`` keeps the cache of the rounds before (every word seen: the bound
for a long stream of docs); ``stages_offset_path`` aligns every doc by offsets (no word
cache, the path before it). The wordpieces stage and ``plan_docs`` see the same cache.
"""

import hashlib
import time
from typing import Any, Callable, Dict, List, Tuple

import torch

from ..decoding.tags import decode_docs
from ..models.encoder_layer import plan_docs
from ..models.encoder_shim import encoder_shim
from ..models.plan_runner import as_long, run_plan
from ..pipeline.ctx_ner import ctx_ner_encoder_layer, ctx_ner_pipe
from ..tokenization.word_cache import word_cache, word_cache_off
from ..tokenization.wordpieces import tokenize_docs

STAGES: Tuple[str, ...] = ("make_doc", "wordpieces", "wordpieces_planning", "transfer")
STAGES += ("null_encoder_head", "decoding", "set_annotations")
# ctx_ner's own host stages: not spaCy's tokenizer, not the device's (encoder, head).
OWN = ("wordpieces_planning", "transfer", "decoding", "set_annotations")


class NullEncoder(torch.nn.Module):
    """Zeros of an encoder's output shape (batch, width, hidden), at no cost: one zero
    vector expanded (no allocation), as an encoder's output already on the device."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.zero = torch.zeros(hidden_size)

    def forward(self, attention_mask: torch.Tensor, **inputs: Any) -> tuple:
        zero = self.zero.to(attention_mask.device)
        return (zero.expand(*attention_mask.shape, len(zero)),)


class ReplayEncoder(torch.nn.Module):
    """An encoder's outputs, computed the first time an input is seen and returned from
    memory after that. Not a test double: the outputs are the encoder's own, so the
    stages after it do the work they do with the encoder, minus the encoder."""

    encoder: Callable[..., tuple]

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.__dict__["encoder"] = encoder  # not a submodule: never saved or moved
        self.outputs: Dict[bytes, tuple] = {}
        self.misses = 0

    def forward(self, attention_mask: torch.Tensor, **inputs: Any) -> tuple:
        (name, x), *_ = inputs.items()
        # One number per position identifies a batch: its ids, or its first embedding
        # dimension (hashing whole embeddings would cost more than the host stages).
        sample = x if x.dim() == 2 else x[..., 0]
        digest = hashlib.blake2b(f"{name} {tuple(x.shape)}".encode(), digest_size=16)
        digest.update(sample.detach().cpu().contiguous().numpy().tobytes())
        key = digest.digest()
        if key not in self.outputs:
            self.misses += 1
            self.outputs[key] = self.encoder(attention_mask=attention_mask, **inputs)
        return self.outputs[key]


def use_replay_encoder(nlp) -> ReplayEncoder:
    """Run ``nlp``'s ctx_ner with its encoder (or its int8 copy) replayed at inference."""
    shim = encoder_shim(ctx_ner_encoder_layer(nlp))
    encoder = shim.inference_encoder or shim.net.encoder
    assert encoder is not None, "the pipeline's encoder is not loaded"
    replay = ReplayEncoder(encoder)
    shim.inference_encoder = replay
    return replay


def use_null_encoder(nlp) -> None:
    """Run ``nlp``'s ctx_ner with the null encoder at inference."""
    shim = encoder_shim(ctx_ner_encoder_layer(nlp))
    shim.inference_encoder = NullEncoder(shim.net.width)


def clear_word_cache(nlp) -> None:
    cache = word_cache(encoder_shim(ctx_ner_encoder_layer(nlp)).tokenizer.backend)
    if cache is not None:
        cache.clear()


def _stage_times(nlp, texts: List[str], batch_size: int, cold: bool) -> Dict[str, float]:
    ner, encoder = ctx_ner_pipe(nlp), ctx_ner_encoder_layer(nlp)
    shim = encoder_shim(encoder)
    net, backend = shim.net.eval(), shim.tokenizer.backend
    device = net.empty.device
    seconds = dict.fromkeys(STAGES, 0.0)
    clock = time.perf_counter
    if cold:
        clear_word_cache(nlp)
    cache = word_cache(backend)
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            before = cache.snapshot() if cache is not None else None  # not timed
            t0 = clock()
            docs = [nlp.make_doc(text) for text in texts[i : i + batch_size]]
            t1 = clock()
            tokenize_docs(backend, docs)
            t2 = clock()
            if cache is not None and before is not None:
                cache.restore(before)  # plan_docs finds the cache as tokenize_docs did
            plan = plan_docs(encoder, docs)
            t3 = clock()
            for b in plan.batches:
                [as_long(a, device) for a in (b.input_ids, b.attention_mask, b.rows, b.cols)]
            t4 = clock()
            outputs = run_plan(net, plan, use_head=True, inference_encoder=shim.inference_encoder)
            logits = outputs.cpu().numpy()
            t5 = clock()
            decoded = decode_docs(docs, logits, ner.tag_names)
            t6 = clock()
            ner.set_annotations(docs, decoded)
            t7 = clock()
            seconds["make_doc"] += t1 - t0
            seconds["wordpieces"] += t2 - t1
            seconds["wordpieces_planning"] += t3 - t2
            seconds["transfer"] += t4 - t3
            seconds["null_encoder_head"] += (t5 - t4) - (t4 - t3)
            seconds["decoding"] += t6 - t5
            seconds["set_annotations"] += t7 - t6
    return seconds


def host_runners(
    nlp, texts: List[str], batch_size: int, null_encoder: bool = True
) -> Dict[str, Callable[..., dict]]:
    """Runners (one round each) of the stages and of ``nlp.pipe`` with the null encoder,
    or with the pipeline's own replayed (``null_encoder=False``: a trained head then tags
    as many tokens as it really does, which decoding and ``set_annotations`` depend on;
    the first round of each batch runs the encoder)."""
    if null_encoder:
        use_null_encoder(nlp)
    else:
        use_replay_encoder(nlp)
    docs = [nlp.make_doc(text) for text in texts]
    words = sum(len(doc) for doc in docs)

    def stages(limit=None, cold=True) -> dict:
        seconds = _stage_times(nlp, texts[:limit], batch_size, cold)
        result = {f"{k}_words_per_s": words / max(v, 1e-9) for k, v in seconds.items()}
        own = sum(seconds[k] for k in OWN)
        return {
            "words": words,
            "seconds_by_stage": seconds,
            **result,
            "ctx_ner_host_words_per_s": words / own,
        }

    def stages_warm_cache(limit=None) -> dict:
        return stages(limit, cold=False)

    def stages_offset_path(limit=None) -> dict:
        with word_cache_off(encoder_shim(ctx_ner_encoder_layer(nlp)).tokenizer.backend):
            return stages(limit)

    def pipe_texts(limit=None) -> dict:
        clear_word_cache(nlp)
        start = time.perf_counter()
        n = sum(len(doc) for doc in nlp.pipe(texts[:limit], batch_size=batch_size))
        return {"words": n, "words_per_s": n / (time.perf_counter() - start)}

    def pipe_docs(limit=None) -> dict:
        fresh = [nlp.make_doc(text) for text in texts[:limit]]  # Docs made elsewhere
        clear_word_cache(nlp)
        start = time.perf_counter()
        n = sum(len(doc) for doc in nlp.pipe(fresh, batch_size=batch_size))
        return {"words": n, "words_per_s": n / (time.perf_counter() - start)}

    return {
        "stages": stages,
        "stages_warm_cache": stages_warm_cache,
        "stages_offset_path": stages_offset_path,
        "pipe_texts": pipe_texts,
        "pipe_docs": pipe_docs,
    }
