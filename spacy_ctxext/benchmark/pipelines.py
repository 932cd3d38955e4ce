"""The pipelines a benchmark times: (a) ctx_ner, (b) spacy-transformers + ner, (c) bare encoder."""

from typing import Callable, List, Optional, Tuple

import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import fix_random_seed

from ..decoding.bio import spans_to_tags
from ..extras import import_spacy_transformers
from ..models.encoder_layer import apply_usage_settings, encoder_precision, get_net, plan_docs
from ..models.plan_runner import as_long
from ..models.pytorch.net_loading import resolve_encoder_name
from ..pipeline.ctx_ner import ctx_ner_encoder_layer  # also registers ctx_ner

INIT_TEXTS = [
    "John_PER Smith_PER flew from London_LOC to Paris_LOC for Reuters_ORG .",
    "The World_MISC Cup_MISC final in Berlin_LOC was won by Germany_LOC .",
    "Mary_PER Jones_PER of the United_ORG Nations_ORG praised the Olympic_MISC team .",
    "Peter_PER joined Google_ORG in New_LOC York_LOC after the French_MISC elections .",
]


def init_examples(nlp) -> List[Example]:
    examples = []
    for text in INIT_TEXTS:
        words = [w.rsplit("_", 1)[0] for w in text.split()]
        labels = [w.rsplit("_", 1)[1] if "_" in w else "" for w in text.split()]
        tags = spans_to_tags(len(words), _label_runs(labels))
        reference = Doc(nlp.vocab, words=words, ents=tags)
        examples.append(Example(Doc(nlp.vocab, words=words), reference))
    return examples


def _label_runs(labels: List[str]) -> List[Tuple[int, int, str]]:
    """Entity spans of per-word labels: a run of one label is one entity ("" is none)."""
    spans: List[Tuple[int, int, str]] = []
    for i, label in enumerate(labels):
        if label and spans and spans[-1][1] == i and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], i + 1, label)
        elif label:
            spans.append((i, i + 1, label))
    return spans


def build_ctx_ner(encoder: str, batch_wordpieces: int, **usage: object):
    """ctx_ner with a random head on ``encoder``; usage: more encoder settings (e.g.
    ``cpu_precision``, ``window``), the component's defaults where left out."""
    nlp = spacy.blank("en")
    nlp.max_length = 10**9  # long synthetic docs (--scaling) are the point here
    encoder_config = {"name": encoder, "batch_wordpieces": batch_wordpieces, **usage}
    nlp.add_pipe("ctx_ner", config={"model": {"encoder": encoder_config}})
    examples = init_examples(nlp)
    nlp.initialize(lambda: examples)
    return nlp


def ctx_ner_pipeline(args, encoder: str, cpu_precision: Optional[str] = None):
    """(a): the trained pipeline of ``--model``, else ctx_ner with a random head
    (the same head each call); ``cpu_precision`` (else ``--cpu-precision``, else the
    pipeline's own) for (q)."""
    given = (
        ("window", args.window),
        ("context", args.context),
        ("cpu_precision", cpu_precision or args.cpu_precision),
    )
    usage = {k: v for k, v in given if v is not None}
    if not args.model:
        fix_random_seed(args.seed)  # the same random head (and entities) in every process
        return build_ctx_ner(encoder, args.batch_wordpieces, **usage)
    usage["batch_wordpieces"] = args.batch_wordpieces
    nlp = spacy.load(args.model)
    apply_usage_settings(ctx_ner_encoder_layer(nlp), usage)
    nlp.max_length = 10**9
    return nlp


def build_spacy_transformers(encoder: str, gpu: bool):
    """(b): a stock spacy-transformers ``transformer`` + ``ner`` on ``encoder``."""
    from transformers import AutoConfig, AutoTokenizer

    import_spacy_transformers("The benchmark's path (b), spacy-transformers + ner,")

    limit = min(
        AutoTokenizer.from_pretrained(encoder).model_max_length,
        AutoConfig.from_pretrained(encoder).max_position_embeddings,
    )  # spacy-transformers truncates windows to the tokenizer's model_max_length.
    nlp = spacy.blank("en")
    spans = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
    model = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": encoder,
        "tokenizer_config": {"use_fast": True, "model_max_length": limit},
        "get_spans": spans,
        "mixed_precision": gpu,
    }
    nlp.add_pipe("transformer", config={"model": model})
    listener = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": "*",
    }
    parser = {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 64,
        "maxout_pieces": 2,
        "use_upper": False,
        "tok2vec": listener,
    }
    nlp.add_pipe("ner", config={"model": parser})
    examples = init_examples(nlp)
    nlp.initialize(lambda: examples)
    return nlp


def bare_encoder(nlp, texts: List[str], batch_size: int) -> Callable[..., int]:
    """(c): plan ctx_ner's windows in chunks of batch_size docs; return a forward runner."""
    encoder = ctx_ner_encoder_layer(nlp)
    net = get_net(encoder).eval()
    device = net.empty.device
    dtype = encoder_precision(encoder, device).autocast
    docs = [nlp.make_doc(text) for text in texts]
    batches = []
    for i in range(0, len(docs), batch_size):
        plan = plan_docs(encoder, docs[i : i + batch_size])
        for b in plan.batches:
            batches.append((as_long(b.input_ids, device), as_long(b.attention_mask, device)))
    words = sum(len(doc) for doc in docs)
    hf_encoder = net.encoder
    assert hf_encoder is not None  # get_net checked that the net is loaded

    def run(limit: Optional[int] = None) -> int:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            for ids, mask in batches[:limit]:
                hf_encoder(input_ids=ids, attention_mask=mask)
        return words

    return run


def pipe_runner(nlp, texts: List[str], batch_size: int) -> Callable[..., int]:
    def run(limit: Optional[int] = None) -> int:
        return sum(len(doc) for doc in nlp.pipe(texts[:limit], batch_size=batch_size))

    return run


def make_random_encoder(name: str, folder: str, seed: int) -> str:
    """Save random weights built from the encoder's config (with its tokenizer) in folder."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_encoder_name(name)
    torch.manual_seed(seed)
    AutoModel.from_config(AutoConfig.from_pretrained(path)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
    return folder
