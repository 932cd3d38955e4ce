"""Where context pays: raw-text entity F1 on first and on repeated mentions, per arm.

    python scripts/context_figure.py [--metrics results] [--output docs/figures/context.svg]

A sentence read alone can name an entity's first mention as well as a whole document can;
repeated mentions, and first mentions that a later passage explains, are where reading
beyond the sentence should help. Reads ``results/study-*.json`` (the runs of
``study.py run``) and ``results/probe-*.json`` (a trained model read with other usage
settings, ``window_swap.py --output``), and draws, per eval set and arm, the mean over
seeds of the F1 on first mentions, repeated mentions and all (``scoring.breakdown``),
with the sample std as error bars. Needs matplotlib.
"""

import argparse
import json
import statistics
from pathlib import Path

BARS = (("first", "first mentions"), ("repeat", "repeated mentions"), ("all", "all"))


def f1_by_arm(metrics_dir: Path) -> dict:
    """{eval set: {arm label: {bar: [F1 per seed]}}} for runs scored on raw text with a
    mention breakdown."""
    panels: dict = {}
    for path in sorted(metrics_dir.glob("study-*.json")) + sorted(metrics_dir.glob("probe-*.json")):
        result = json.loads(path.read_text())
        if result.get("protocol") != "raw_text" or "breakdown" not in result:
            continue
        label, split = _label(path, result)
        scores = {
            "first": 100 * result["breakdown"]["mention"]["first"]["f"],
            "repeat": 100 * result["breakdown"]["mention"]["repeat"]["f"],
            "all": 100 * result["spacy"]["ents_f"],
        }
        arm = panels.setdefault(split, {}).setdefault(label, {bar: [] for bar, _ in BARS})
        for bar, value in scores.items():
            arm[bar].append(value)
    return panels


def _label(path: Path, result: dict):
    if "study" in result:
        info = result["study"]
        rate = info.get("learn_rate", 1e-4)
        return f"{info['arm']} ({info['steps']} steps, lr {rate:g})", info["eval_split"]
    # probe-ARM-as-SETTING-sSEED.json: a seed's model read with other settings.
    name = path.stem[len("probe-") :].rsplit("-s", 1)[0]
    return name, result.get("eval_split", "probes")


def draw(panels: dict, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [len(rows) for rows in panels.values()]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, 1.2 + 0.7 * sum(heights)), squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, (split, rows) in zip(axes[:, 0], sorted(panels.items())):
        labels = list(rows)
        for offset, (bar, name) in zip((-0.27, 0.0, 0.27), BARS):
            means = [statistics.mean(rows[label][bar]) for label in labels]
            errors = [_stdev(rows[label][bar]) for label in labels]
            y = [i + offset for i in range(len(labels))]
            ax.barh(y, means, height=0.26, xerr=errors, label=name, capsize=2)
            for yi, mean, error in zip(y, means, errors):
                ax.text(mean + error + 0.15, yi, f"{mean:.1f}", va="center", fontsize=6)
        seeds = [f"{label} ({len(rows[label]['all'])} seeds)" for label in labels]
        ax.set_yticks(range(len(labels)), seeds, fontsize=7)
        ax.invert_yaxis()
        values = [v for label in labels for bar, _ in BARS for v in rows[label][bar]]
        ax.set_xlim(max(0.0, min(values) - 3), max(values) + 3)
        ax.set_title(f"{split}: raw-text entity F1 by mention", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, metadata={"Date": None})  # no timestamp: the file changes with data only
    print(f"wrote {output}")


def _stdev(values: list) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=Path, default=Path("results"))
    parser.add_argument("--output", type=Path, default=Path("docs/figures/context.svg"))
    parser.add_argument("--arms", nargs="*", help="only these arm labels' prefixes")
    args = parser.parse_args(argv)
    panels = f1_by_arm(args.metrics)
    if args.arms:
        panels = {
            split: {k: v for k, v in rows.items() if k.startswith(tuple(args.arms))}
            for split, rows in panels.items()
        }
        panels = {split: rows for split, rows in panels.items() if rows}
    if not panels:
        raise SystemExit(f"No run in {args.metrics} has a raw-text mention breakdown.")
    draw(panels, args.output)


if __name__ == "__main__":
    main()
