"""What a trained document memory holds and what its tokens read, on a few gold docs.

    python scripts/memory_probe.py training/study/ARM/model-best corpus/litbank/dev.spacy \
        [--docs 3] [--top 8] [--output results/memory-probe-ARM.json]

For each memory kind the model has, per doc: how open the gate is (mean and max |g| as
used, i.e. scaled), and the std of what the memory adds to the logits against the std
of the logits without it. Type memory: how many tokens have a slot. Summary slots: the
tokens each slot pools most (its top softmax weights over the doc), how peaked each
slot's pooling is (the effective number of tokens, 1 / sum w²), and how peaked the
tokens' reads are (mean entropy over slots, in nats; log(n_slots) is uniform).
"""

import argparse
import json
from pathlib import Path

import numpy as np
import spacy
import torch
from spacy.tokens import DocBin

from spacy_ctxext.models.encoder_layer import get_net, plan_docs
from spacy_ctxext.models.memory import token_index
from spacy_ctxext.models.plan_runner import run_plan
from spacy_ctxext.models.pytorch.memory_writer import MemoryWriter
from spacy_ctxext.models.pytorch.summary_memory import GATE_SCALE
from spacy_ctxext.training.readers import unannotated_copy


def probe_doc(net, encoder, doc, top: int) -> dict:
    plan = plan_docs(encoder, [doc])
    vectors = run_plan(net, plan, use_head=False)  # token vectors, before any memory
    head = net.head
    logits = head(vectors)
    index = token_index([doc], net.memory_settings)
    writer = MemoryWriter(index, head, net.empty.device, net.memory, net.summary)
    writer.write(vectors, torch.arange(len(doc)))
    added = writer.read(torch.zeros_like(logits))
    report = {
        "tokens": len(doc),
        "logits_std": float(logits.std()),
        "memory_logits_std": float(added.std()),
        "tags_changed": float((logits.argmax(1) != (logits + added).argmax(1)).float().mean()),
    }
    if net.memory is not None:
        gate = GATE_SCALE * net.memory.gate
        report["type_gate"] = [float(gate.abs().mean()), float(gate.abs().max())]
        report["tokens_with_slot"] = int((index.slots >= 0).sum())
    if net.summary is not None:
        report.update(summary_report(net.summary, vectors, doc, top))
    return report


def summary_report(summary, vectors, doc, top: int) -> dict:
    gate = GATE_SCALE * summary.gate
    weights = torch.softmax(summary.pool_scores(vectors), dim=0)  # (tokens, slots)
    slots = weights.T @ summary.value(vectors)
    keys = summary.slot_key(slots)
    reads = torch.softmax(summary.read_query(vectors) @ keys.T / summary.key_width**0.5, 1)
    entropy = -(reads * reads.clamp(min=1e-12).log()).sum(1)
    top_tokens = []
    for k in range(summary.n_slots):
        best = torch.topk(weights[:, k], min(top, len(doc))).indices.tolist()
        top_tokens.append([doc[i].text for i in best])
    return {
        "summary_gate": [float(gate.abs().mean()), float(gate.abs().max())],
        "slot_effective_tokens": [float(1 / (w**2).sum()) for w in weights.T],
        "read_entropy": float(entropy.mean()),
        "read_entropy_uniform": float(np.log(summary.n_slots)),
        "slot_top_tokens": top_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("data", help="gold .spacy DocBin (its docs' tokens are used)")
    parser.add_argument("--docs", type=int, default=3)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    encoder = nlp.get_pipe("ctx_ner").model.layers[0]
    net = get_net(encoder).eval()
    if net.memory_settings is None:
        parser.error(f"{args.model} has no document memory to probe")
    golds = list(DocBin().from_disk(args.data).get_docs(nlp.vocab))[: args.docs]
    with torch.no_grad():
        reports = [probe_doc(net, encoder, unannotated_copy(nlp, g), args.top) for g in golds]
    text = json.dumps({"model": args.model, "data": args.data, "docs": reports}, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
