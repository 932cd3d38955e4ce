"""ctx_ner on every encoder family it claims: BERT, RoBERTa, XLM-R, DeBERTa-v2, ELECTRA,
DistilBERT, Longformer and ModernBERT, each a tiny random encoder built offline and saved
with ``save_pretrained`` beside a fast tokenizer ``AutoTokenizer`` loads (WordPiece,
byte-level BPE or SentencePiece Unigram, trained here with ``tokenizers``).

For each: the encoder loads with its own specials, padding id and position range (RoBERTa-
like tables reserve rows before the first position); the pieces of any text align to its
tokens by character offsets; ``add_pipe``, ``initialize`` and a few updates lower the loss;
a doc of many windows gets a valid tag on every token, at the configured window and at
the full position range; ``nlp.pipe`` gives what ``nlp(text)`` gives; a saved pipeline
gives the same logits.
"""

import math

import numpy as np
import pytest
import spacy
import torch
import transformers
from util import (
    SCRIPTS,
    STORY,
    TRAIN_DATA,
    WORDS,
    ZERO_PIECE_CHARS,
    assert_valid,
    encoder_of,
    entities,
    logits,
    make_examples,
    make_nlp,
    wordpiece_tokenizer,
)

from spacy_ctxext.models.encoder_layer import apply_usage_settings, get_net, plan_docs
from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.models.pytorch.positions import usable_positions
from spacy_ctxext.tokenization.wordpieces import tokenize_docs

pytestmark = pytest.mark.filterwarnings("ignore:attn_implementation='sdpa' unavailable")

POSITIONS = 128
WINDOW, CONTEXT = 32, 4
SIZES = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": POSITIONS,
}
# RoBERTa-like position tables start at padding_idx + 1 = 2 (as roberta-base's 514 rows).
ROBERTA_POSITIONS = {**SIZES, "max_position_embeddings": POSITIONS + 2}
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BERT_SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
LONG_TEXT = STORY * 6  # 66 tokens, well over one window of 32 wordpieces
TEXTS = [LONG_TEXT, STORY, TRAIN_DATA[0][0], "", "Mary " + " ".join(ZERO_PIECE_CHARS)]


def tokenizer_corpus():
    sentences = [text for text, _ in TRAIN_DATA] + [STORY]
    sentences += [" ".join(WORDS[i : i + 8]) for i in range(0, len(WORDS), 8)]
    return sentences + [s.lower() for s in sentences] + [s.title() for s in sentences]


def byte_level_bpe(specials):
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        tokenizer_corpus(), vocab_size=400, special_tokens=specials, show_progress=False
    )
    return tokenizer


def unigram(specials, unk):
    from tokenizers import SentencePieceUnigramTokenizer

    tokenizer = SentencePieceUnigramTokenizer()
    tokenizer.train_from_iterator(
        tokenizer_corpus(), vocab_size=200, special_tokens=specials, unk_token=unk,
        show_progress=False,
    )  # fmt: skip
    return tokenizer


def with_template(tokenizer, cls, sep):
    """The Rust tokenizer, adding ``cls`` before and ``sep`` after each sequence."""
    from tokenizers.processors import TemplateProcessing

    backend = tokenizer._tokenizer
    backend.post_processor = TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} {sep} $B {sep}",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
    )
    return backend


def special_names(specials):
    pad, cls, sep, unk, mask = specials
    names = dict(pad_token=pad, cls_token=cls, sep_token=sep, unk_token=unk, mask_token=mask)
    return {**names, "bos_token": cls, "eos_token": sep}


def roberta_bpe(folder, tokenizer_class):
    """From the folder's vocab.json and merges.txt (transformers 5 reads no ``vocab_file=``)."""
    byte_level_bpe(ROBERTA_SPECIALS).save_model(str(folder))
    return tokenizer_class.from_pretrained(str(folder))


def build_bert(folder):
    t = transformers
    return wordpiece_tokenizer(folder, t.BertTokenizerFast), t.BertModel, t.BertConfig(**SIZES)


def build_electra(folder):
    t = transformers
    config = t.ElectraConfig(embedding_size=16, **SIZES)
    return wordpiece_tokenizer(folder, t.ElectraTokenizerFast), t.ElectraModel, config


def build_distilbert(folder):
    t = transformers
    config = t.DistilBertConfig(
        dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=POSITIONS
    )
    return wordpiece_tokenizer(folder, t.DistilBertTokenizerFast), t.DistilBertModel, config


def build_roberta(folder):
    t = transformers
    config = t.RobertaConfig(bos_token_id=0, eos_token_id=2, **ROBERTA_POSITIONS)
    return roberta_bpe(folder, t.RobertaTokenizerFast), t.RobertaModel, config


def build_longformer(folder):
    t = transformers
    config = t.LongformerConfig(
        attention_window=8, bos_token_id=0, eos_token_id=2, **ROBERTA_POSITIONS
    )
    return roberta_bpe(folder, t.LongformerTokenizerFast), t.LongformerModel, config


def build_xlm_roberta(folder):
    t = transformers
    backend = with_template(unigram(ROBERTA_SPECIALS, "<unk>"), "<s>", "</s>")
    names = special_names(["<pad>", "<s>", "</s>", "<unk>", "<mask>"])
    tokenizer = t.XLMRobertaTokenizerFast(tokenizer_object=backend, **names)
    config = t.XLMRobertaConfig(bos_token_id=0, eos_token_id=2, **ROBERTA_POSITIONS)
    return tokenizer, t.XLMRobertaModel, config


def build_deberta_v2(folder):
    """DeBERTa-v3's shape: relative attention only, no absolute position table."""
    t = transformers
    backend = with_template(unigram(BERT_SPECIALS, "[UNK]"), "[CLS]", "[SEP]")
    tokenizer = t.DebertaV2TokenizerFast(tokenizer_object=backend, **special_names(BERT_SPECIALS))
    config = t.DebertaV2Config(
        relative_attention=True,
        position_biased_input=False,
        position_buckets=16,
        max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"],
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        **SIZES,
    )
    return tokenizer, t.DebertaV2Model, config


def build_modernbert(folder):
    """Rotary positions, local attention in every other layer, a generic fast tokenizer
    (byte-level BPE) without a Python subclass, as answerdotai/ModernBERT-base has."""
    t = transformers
    backend = with_template(byte_level_bpe(BERT_SPECIALS), "[CLS]", "[SEP]")
    names = special_names(BERT_SPECIALS)
    tokenizer = t.PreTrainedTokenizerFast(tokenizer_object=backend, **names)
    ids = {"cls_token_id": 1, "sep_token_id": 2, "bos_token_id": 1, "eos_token_id": 2}
    config = t.ModernBertConfig(local_attention=16, global_attn_every_n_layers=2, **ids, **SIZES)
    return tokenizer, t.ModernBertModel, config


FAMILIES = {
    "bert": build_bert,
    "roberta": build_roberta,
    "xlm-roberta": build_xlm_roberta,
    "deberta-v2": build_deberta_v2,
    "electra": build_electra,
    "distilbert": build_distilbert,
    "longformer": build_longformer,
    "modernbert": build_modernbert,
}
# The model class each folder must load as (AutoModel picks it from config.json).
MODEL_CLASSES = {
    "bert": "BertModel",
    "roberta": "RobertaModel",
    "xlm-roberta": "XLMRobertaModel",
    "deberta-v2": "DebertaV2Model",
    "electra": "ElectraModel",
    "distilbert": "DistilBertModel",
    "longformer": "LongformerModel",
    "modernbert": "ModernBertModel",
}


def family_param(name):
    marks = []
    if name == "modernbert" and not hasattr(transformers, "ModernBertModel"):
        reason = f"transformers {transformers.__version__} has no ModernBERT (4.48+ has)"
        marks.append(pytest.mark.skip(reason=reason))
    return pytest.param(name, id=name, marks=marks)


def save_family(name, folder):
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, model_class, config = FAMILIES[name](folder)
    config.vocab_size = len(tokenizer)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=[family_param(name) for name in FAMILIES])
def family(request):
    return request.param


@pytest.fixture(scope="module")
def folder(family, tmp_path_factory):
    return str(save_family(family, tmp_path_factory.mktemp(family)))


@pytest.fixture(scope="module")
def family_trained(folder):
    """A ctx_ner on the family's encoder, initialized and updated 6 times; the losses."""
    nlp = make_nlp(folder, window=WINDOW, context=CONTEXT)
    examples = make_examples(nlp)
    torch.manual_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    losses = []
    for _ in range(6):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["ctx_ner"])
    return nlp, losses


@pytest.fixture(scope="module")
def family_nlp(family_trained):
    return family_trained[0]


def test_loads_as_its_family(family, folder, family_nlp):
    """The folder's model class; the specials, padding id and position range read from
    it fit the family's (RoBERTa-like tables hold 2 rows before the first position)."""
    from transformers import AutoTokenizer

    net = get_net(encoder_of(family_nlp))
    loaded = encoder_shim(encoder_of(family_nlp)).tokenizer
    assert type(net.encoder).__name__ == MODEL_CLASSES[family]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert loaded.specials == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])
    assert loaded.specials != ([], [])
    # RoBERTa-like encoders count positions from the padding id: it must be the config's.
    assert loaded.pad_id == tokenizer.pad_token_id == net.encoder.config.pad_token_id
    assert usable_positions(net.encoder) == POSITIONS
    attrs = encoder_of(family_nlp).attrs
    assert (attrs["window"], attrs["context"]) == (WINDOW, CONTEXT)


def test_pieces_align_by_offsets(family_nlp):
    """The doc's pieces are the tokenizer's pieces of its text, and each token is given a
    piece that overlaps it, or none only where no piece does."""
    backend = encoder_shim(encoder_of(family_nlp)).tokenizer.backend
    texts = [LONG_TEXT, "Mr. Smith's  bank,in New-York (U.S.) said:  \n\n 3.5% ", *SCRIPTS]
    docs = [family_nlp.make_doc(text) for text in texts]
    for doc, pieces in zip(docs, tokenize_docs(backend, docs)):
        encoding = backend.encode(doc.text, add_special_tokens=False)
        assert pieces.ids.tolist() == encoding.ids, doc.text
        offsets = np.asarray(encoding.offsets).reshape(-1, 2)
        for token, piece in zip(doc, pieces.token_piece.tolist()):
            start, end = token.idx, token.idx + len(token)
            overlapping = (offsets[:, 0] < end) & (offsets[:, 1] > start)
            assert overlapping[piece] if piece >= 0 else not overlapping.any(), token.text


def test_updates_lower_the_loss(family_trained):
    _, losses = family_trained
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.9 * losses[0], losses


def window_widths(nlp, doc):
    plan = plan_docs(encoder_of(nlp), [doc])
    return [int(width) for batch in plan.batches for width in batch.attention_mask.sum(axis=1)]


def test_long_doc_gets_a_tag_on_every_token(family_nlp):
    doc = family_nlp.make_doc(LONG_TEXT)
    widths = window_widths(family_nlp, doc)
    assert len(widths) > 1 and max(widths) <= WINDOW, widths
    assert_valid(family_nlp(LONG_TEXT))


def test_full_position_range(family_nlp, monkeypatch):
    """Without a window, windows fill every usable position (RoBERTa-like: 2 rows fewer
    than the table), and a doc of many such windows runs."""
    encoder = encoder_of(family_nlp)
    for key, value in list(encoder.attrs.items()):
        monkeypatch.setitem(encoder.attrs, key, value)
    apply_usage_settings(encoder, {"window": None})
    assert encoder.attrs["window"] == POSITIONS
    text = STORY * 40
    widths = window_widths(family_nlp, family_nlp.make_doc(text))
    assert len(widths) > 1 and max(widths) == POSITIONS, widths
    assert_valid(family_nlp(text))


def test_pipe_equals_one_doc_at_a_time(family_nlp):
    """Docs batched together (their windows packed in shared encoder calls) get the
    logits and entities each gets alone."""
    assert [entities(d) for d in family_nlp.pipe(TEXTS)] == [entities(family_nlp(t)) for t in TEXTS]
    together = logits(family_nlp, [family_nlp.make_doc(t) for t in TEXTS])
    alone = [logits(family_nlp, [family_nlp.make_doc(t)])[0] for t in TEXTS]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_to_disk_and_load_give_the_same(family_nlp, tmp_path):
    family_nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert [entities(loaded(t)) for t in TEXTS] == [entities(family_nlp(t)) for t in TEXTS]
    before = logits(family_nlp, [family_nlp.make_doc(t) for t in TEXTS])
    after = logits(loaded, [loaded.make_doc(t) for t in TEXTS])
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
