"""The study's figure: raw-text vs gold-token entity F1 per arm, one panel per eval set.

    python scripts/study_figure.py [--metrics results] [--output docs/figures/raw-vs-gold.svg]

Reads the same ``results/study-*.json`` as ``study.py table`` and draws, for every arm
and budget scored on raw text, two bars: the F1 a user's ``nlp(text)`` gives (raw text)
and the F1 on gold tokens with gold sentence starts (how every score before issue #21
was taken), mean over seeds with the sample std as error bars. Needs matplotlib
(``pip install matplotlib``).
"""

import argparse
import json
import statistics
from pathlib import Path

from study import ARMS, DEFAULT_LEARN_RATE, protocol_scores, windows_kind

PROTOCOL_BARS = (
    ("raw_text", "raw text (nlp(text))"),
    ("gold_sentences", "gold tokens + sentences"),
)


def f1_by_arm(metrics_dir: Path) -> dict:
    """{eval set: [(row label, {protocol: [F1 per seed]})]} for the arms scored on raw text."""
    runs: dict = {}
    for path in sorted(metrics_dir.glob("study-*.json")):
        result = json.loads(path.read_text())
        info = result["study"]
        if protocol_scores(result, "raw_text") is None:
            continue
        budget = (info["arm"], info.get("learn_rate", DEFAULT_LEARN_RATE))
        runs.setdefault(info["eval_split"], {}).setdefault(budget, []).append(result)
    panels: dict = {}
    for split, by_budget in runs.items():
        order = sorted(by_budget, key=lambda budget: (list(ARMS).index(budget[0]), budget[1]))
        for arm, learn_rate in order:
            results = by_budget[(arm, learn_rate)]
            seeds = f"{len(results)} seed" + ("s" if len(results) > 1 else "")
            label = f"{arm} ({windows_kind(arm)}, lr {learn_rate:g}, {seeds})"
            scores = {
                protocol: [100 * protocol_scores(r, protocol)["spacy"]["ents_f"] for r in results]
                for protocol, _ in PROTOCOL_BARS
            }
            panels.setdefault(split, []).append((label, scores))
    return panels


def draw(panels: dict, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [len(rows) for rows in panels.values()]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 1.0 + 0.55 * sum(heights)), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, (split, rows) in zip(axes[:, 0], sorted(panels.items())):
        for offset, (protocol, name) in zip((-0.2, 0.2), PROTOCOL_BARS):
            means = [statistics.mean(scores[protocol]) for _, scores in rows]
            errors = [statistics.stdev(s[protocol]) if len(s[protocol]) > 1 else 0 for _, s in rows]
            y = [i + offset for i in range(len(rows))]
            ax.barh(y, means, height=0.4, xerr=errors, label=name, capsize=2)
            for yi, mean, error in zip(y, means, errors):
                ax.text(mean + error + 0.15, yi, f"{mean:.2f}", va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
        ax.invert_yaxis()
        values = [f1 for _, scores in rows for seeds in scores.values() for f1 in seeds]
        ax.set_xlim(max(0.0, min(values) - 2), max(values) + 1.5)
        ax.set_title(f"{split}: entity F1 (spaCy scorer)", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, metadata={"Date": None})  # no timestamp: the file changes with data only
    print(f"wrote {output}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=Path, default=Path("results"))
    parser.add_argument("--output", type=Path, default=Path("docs/figures/raw-vs-gold.svg"))
    args = parser.parse_args(argv)
    panels = f1_by_arm(args.metrics)
    if not panels:
        raise SystemExit(f"No run in {args.metrics} was scored on raw text: rescore them first.")
    draw(panels, args.output)


if __name__ == "__main__":
    main()
