"""A second train/dev split of a corpus, for arms that one dev split cannot separate.

    python scripts/resplit.py corpus/litbank corpus/litbank-split2 [--every 7]

Every ``every``-th training document (counting from 1, in file order) becomes dev; the old
dev documents join training, so both splits train on as many documents. LitBank's 70 + 10
books give 70 training and 10 new dev books, none of them dev in the first split.
"""

import argparse
from pathlib import Path

import spacy
from spacy.tokens import DocBin


def resplit(source: Path, target: Path, every: int) -> tuple:
    vocab = spacy.blank("en").vocab
    train = list(DocBin().from_disk(source / "train.spacy").get_docs(vocab))
    dev = list(DocBin().from_disk(source / "dev.spacy").get_docs(vocab))
    new_dev = [doc for i, doc in enumerate(train, 1) if i % every == 0]
    new_train = [doc for i, doc in enumerate(train, 1) if i % every != 0] + dev
    target.mkdir(parents=True, exist_ok=True)
    DocBin(docs=new_train, store_user_data=True).to_disk(target / "train.spacy")
    DocBin(docs=new_dev, store_user_data=True).to_disk(target / "dev.spacy")
    return len(new_train), len(new_dev)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with train.spacy and dev.spacy")
    parser.add_argument("target", type=Path, help="folder for the new split")
    parser.add_argument("--every", type=int, default=7, help="every n-th train doc to dev")
    args = parser.parse_args(argv)
    n_train, n_dev = resplit(args.source, args.target, args.every)
    print(f"{args.target}: {n_train} train docs, {n_dev} dev docs")


if __name__ == "__main__":
    main()
