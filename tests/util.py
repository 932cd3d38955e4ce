"""Helpers shared by the tests: plain functions and constants (fixtures are in conftest.py)."""

import string
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import spacy
import torch
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_ctxext.decoding.bio import bio_tag_names
from spacy_ctxext.decoding.tags import decode_docs
from spacy_ctxext.pipeline.ctx_ner import ctx_ner_encoder_layer
from spacy_ctxext.pipeline.entities import set_doc_entities

WORDS = (
    "the a an of in on at to and or is was were be by for with from as that this it he she they "
    "we you i mr ms dr new york london paris berlin germany france john mary smith peter reuters "
    "said says told company bank government president minister world cup team city university "
    "monday tuesday sunday year years million percent market shares police people"
).split()
REPO = Path(__file__).resolve().parents[1]  # the checkout's root
STORY = "Mary told Peter about Paris and the bank in London . "
ZERO_PIECE_CHARS = ["\u200b", "\x01", "\x07", "\u0301", "\u00ad", "\x00"]
SCRIPTS = [
    "Mary 😀 met 👩‍👩‍👧 in Paris 🇫🇷 .",
    "東京で John Smith に会った 。北京 和 上海",
    "مرحبا بكم في London . שלום עולם Paris",
    "Mary\x00Smith \x00 visited\x00 Berlin \x00",
    "Пётр met Ἀθῆναι and 서울 near ∑∞ in Paris",
]
TRAIN_DATA = [
    ("John Smith visited New York on Monday .", [(0, 10, "PER"), (19, 27, "LOC")]),
    ("Reuters said the bank in London lost money .", [(0, 7, "ORG"), (25, 31, "LOC")]),
    ("Mary told Peter about Paris .", [(0, 4, "PER"), (10, 15, "PER"), (22, 27, "LOC")]),
]


# The shape of every tiny random encoder the tests build.
TINY_SIZES = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
}


def write_vocab(path: Path) -> Path:
    """A WordPiece vocab: specials, characters, ``##`` characters and ``WORDS``."""
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits
    pieces += list(chars) + list(string.punctuation)
    pieces += ["##" + c for c in chars]
    pieces += [w for w in WORDS if w not in pieces]
    path.write_text("\n".join(pieces) + "\n", encoding="utf8")
    return path


def wordpiece_tokenizer(folder: Path, tokenizer_class, **settings):
    """``tokenizer_class`` over ``write_vocab``'s vocab in ``folder``, lower-casing.

    Read from the folder, not given as ``vocab_file=``: transformers 5 renamed that
    argument (to ``vocab``) and builds a vocab of the specials alone from the old keyword.
    """
    write_vocab(folder / "vocab.txt")
    return tokenizer_class.from_pretrained(str(folder), do_lower_case=True, **settings)


def save_tiny_bert(folder: Path, max_position_embeddings: int = 128, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT and its tokenizer, saved with ``save_pretrained``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = wordpiece_tokenizer(folder, BertTokenizerFast)
    config = BertConfig(
        vocab_size=len(tokenizer), max_position_embeddings=max_position_embeddings, **TINY_SIZES
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_nlp(encoder_path, **encoder_settings):
    """A blank English pipeline with an uninitialized ctx_ner on ``encoder_path``, its
    encoder in exact fp32 unless the settings say otherwise (the default, "auto", is
    bf16 at inference on CPUs that have it, where logits move by a bf16 step with the
    batch; tests/models/pytorch/test_compute_dtype.py tests it)."""
    encoder_settings.setdefault("cpu_precision", "fp32")
    nlp = spacy.blank("en")
    config = {"model": {"encoder": {"name": encoder_path, **encoder_settings}}}
    nlp.add_pipe("ctx_ner", config=config)
    return nlp


def make_examples(nlp, data=TRAIN_DATA):
    return [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in data]


def entities(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def encoder_of(nlp):
    """The ctx_ner encoder layer (its ``attrs`` hold the EncoderSettings)."""
    return ctx_ner_encoder_layer(nlp)


def is_valid_bio(tags, names):
    """Independent BIO check of tag ids, written from the tag names alone."""
    previous = "O"
    for tag in tags:
        name = names[tag]
        if name.startswith("I-") and previous[2:] != name[2:]:
            return False
        previous = name
    return True


def assert_valid(doc, labels=("LOC", "ORG", "PER")):
    """Every token tagged B/I/O with a known label; entities are in-range, valid BIO runs."""
    for i, token in enumerate(doc):
        assert token.ent_iob_ in ("B", "I", "O"), (i, token.text, token.ent_iob_)
        if token.ent_iob_ == "I":
            prev = doc[i - 1]
            assert i > 0 and prev.ent_iob_ in ("B", "I") and prev.ent_type_ == token.ent_type_
        assert (token.ent_type_ in labels) == (token.ent_iob_ != "O")
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc) and ent.label_ in labels
    group = doc.spans["ctx_ner"]
    assert len(group.attrs["scores"]) == len(group)


@contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to ``n`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def train_steps(nlp, examples, *, learn_rate, steps, batch_size=None):
    """Initialize ``nlp`` on the examples and update it ``steps`` times, cycling through
    batches of ``batch_size`` examples (all of them per step by default)."""
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    size = batch_size or len(examples)
    n_batches = max(len(examples) // size, 1)
    for step in range(steps):
        start = step % n_batches * size
        nlp.update(examples[start : start + size], sgd=optimizer)
    return nlp


# An entity_ruler pipeline and gold docs for scoring code (no encoder needed).
PATTERNS = [
    {"label": "PER", "pattern": "John Smith"},
    {"label": "LOC", "pattern": "New York"},
    {"label": "LOC", "pattern": "Paris"},
    {"label": "ORG", "pattern": "Reuters"},  # not annotated in the gold: one false positive
]
# Gold: 6 entities (PER 3, LOC 3). The ruler finds 5: John Smith, New York x2, Paris and a
# false positive Reuters/ORG; it misses Mary Jones and Peter Brown (no pattern).
# Entity level: tp 4, pred 5, gold 6 -> P 4/5, R 4/6, F 8/11.
GOLD = [
    ("John Smith lives in New York .", ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]),
    ("Mary Jones told Reuters in Paris .", ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "O"]),
    ("Peter Brown flew to New York .", ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]),
]


def make_ruler_nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    return nlp


def write_gold(nlp, path, gold=GOLD):
    db = DocBin()
    for text, tags in gold:
        words = text.split()
        db.add(Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False], ents=tags))
    db.to_disk(path)
    return path


# Document memory pipelines, and docs whose second mention needs the first's cue.
def make_memory_nlp(encoder_path, min_count=2, memory=None, **encoder_settings):
    """A ctx_ner with a document memory: DocumentMemory.v1 with ``min_count``, or the
    ``memory`` block given; its encoder in exact fp32 unless the settings say otherwise
    (as ``make_nlp``'s)."""
    nlp = spacy.blank("en")
    memory = memory or {"@misc": "spacy-ctxext.DocumentMemory.v1", "min_count": min_count}
    model = {
        "@architectures": "spacy-ctxext.TokenClassifier.v1",
        "memory": memory,
        "encoder": {
            "@architectures": "spacy-ctxext.ContextExtendedTransformer.v4",
            "name": encoder_path,
            "cpu_precision": "fp32",
            **encoder_settings,
        },
    }
    nlp.add_pipe("ctx_ner", config={"model": model})
    return nlp


def logits(nlp, docs):
    return [np.asarray(s) for s in nlp.get_pipe("ctx_ner").model.predict(docs)]


def mention_docs(nlp, n_docs):
    """Two sentences each; the second's name is PER or ORG only by the first's cue word.

    Each sentence is its own window (isolate_sentences), so the name in the second
    sentence can be labelled only through what the memory brings from the first.
    """
    rng = np.random.default_rng(0)
    names = ["john", "smith", "peter", "paris", "london", "berlin"]
    examples = []
    for _ in range(n_docs):
        name, label = str(rng.choice(names)), str(rng.choice(["PER", "ORG"]))
        cue = "mr" if label == "PER" else "company"
        words = [cue, name, "said", ".", "then", name, "left", "."]
        starts = [True, False, False, False, True, False, False, False]
        gold = Doc(nlp.vocab, words=words, sent_starts=starts)
        gold.ents = [gold.char_span(*_char(gold, i), label=label) for i in (1, 5)]
        examples.append(Example(Doc(nlp.vocab, words=words, sent_starts=starts), gold))
    return examples


def _char(doc, i):
    return doc[i].idx, doc[i].idx + len(doc[i])


def second_mention_accuracy(nlp, examples):
    docs = nlp.get_pipe("ctx_ner").pipe([eg.x.copy() for eg in examples])
    hits = [doc[5].ent_type_ == eg.reference[5].ent_type_ for doc, eg in zip(docs, examples)]
    return float(np.mean(hits))


def train_on_mentions(nlp, examples):
    torch.manual_seed(0)
    train_steps(nlp, examples, learn_rate=1e-2, steps=80, batch_size=8)


DECODE_NAMES = bio_tag_names(["LOC", "ORG", "PER"])


def logits_for(docs, tags_by_token, names=DECODE_NAMES):
    """Logits of all the docs' tokens laid end to end: 10 for each token's tag, else 0."""
    rows = [tags_by_token.get(token.text, "O") for doc in docs for token in doc]
    logits = np.zeros((len(rows), len(names)), dtype="f")
    logits[np.arange(len(rows)), [names.index(tag) for tag in rows]] = 10.0
    return logits


def tag_docs(docs, tags_by_token, overwrite=True):
    """Decode ``logits_for`` the docs and write their entities, as ctx_ner does."""
    for doc, decoded in zip(docs, decode_docs(docs, logits_for(docs, tags_by_token), DECODE_NAMES)):
        set_doc_entities(doc, decoded, DECODE_NAMES, spans_key="ctx_ner", overwrite=overwrite)
    return docs
