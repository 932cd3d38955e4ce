"""Offline fixtures: tiny random BERT encoders saved with ``save_pretrained``."""

import string
from pathlib import Path

import pytest
import spacy
from spacy.training import Example

WORDS = (
    "the a an of in on at to and or is was were be by for with from as that this it he she they "
    "we you i mr ms dr new york london paris berlin germany france john mary smith peter reuters "
    "said says told company bank government president minister world cup team city university "
    "monday tuesday sunday year years million percent market shares police people"
).split()


def write_vocab(path: Path) -> Path:
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits
    pieces += list(chars) + list(string.punctuation)
    pieces += ["##" + c for c in chars]
    pieces += [w for w in WORDS if w not in pieces]
    path.write_text("\n".join(pieces) + "\n", encoding="utf8")
    return path


def save_tiny_bert(folder: Path, max_position_embeddings: int = 128, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = write_vocab(folder / "vocab.txt")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=max_position_embeddings,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT with 128 positions and a small WordPiece vocab."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="session")
def tiny_bert_64(tmp_path_factory) -> str:
    """The same encoder with only 64 positions, for position-extension tests."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny_bert_64"), max_position_embeddings=64))


TRAIN_DATA = [
    ("John Smith visited New York on Monday .", [(0, 10, "PER"), (19, 27, "LOC")]),
    ("Reuters said the bank in London lost money .", [(0, 7, "ORG"), (25, 31, "LOC")]),
    ("Mary told Peter about Paris .", [(0, 4, "PER"), (10, 15, "PER"), (22, 27, "LOC")]),
]


def make_nlp(encoder_path, **encoder_settings):
    nlp = spacy.blank("en")
    config = {"model": {"encoder": {"name": encoder_path, **encoder_settings}}}
    nlp.add_pipe("ctx_ner", config=config)
    return nlp


def make_examples(nlp):
    return [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN_DATA]


def entities(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


@pytest.fixture(scope="session")
def trained(tiny_bert):
    """A ctx_ner overfit on three sentences (the test asserts it gets there)."""
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    steps = 0
    while steps < 100 and any(entities(nlp(text)) != ents for text, ents in TRAIN_DATA):
        nlp.update(examples, sgd=optimizer)
        steps += 1
    return nlp, steps
