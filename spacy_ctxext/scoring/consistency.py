"""Label consistency: does a name that recurs in a document get one label throughout?

F1 counts each mention alone; a reader notices when "Mr Smith" is a person on page 1
and an organisation on page 9. For every gold entity string that occurs at least twice
in a doc, consistency is the share of such strings whose occurrences all get the same
predicted label (an occurrence the model misses, or cuts differently, counts as "O").
"""

from collections import defaultdict
from typing import Dict, Iterable, List, Tuple

from spacy.training import Example


def entity_consistency(examples: Iterable[Example], min_occurrences: int = 2) -> Dict[str, float]:
    """``consistency`` (share of repeated gold strings labelled alike in all their
    occurrences), ``consistent_correct`` (alike and equal to the gold label), and
    ``repeated`` (how many strings were counted; 0 gives shares of 0.0)."""
    alike = correct = repeated = 0
    for example in examples:
        for gold_labels, predicted in _repeated_strings(example, min_occurrences):
            repeated += 1
            if len(set(predicted)) == 1:
                alike += 1
                correct += predicted[0] in gold_labels
    return {
        "consistency": alike / repeated if repeated else 0.0,
        "consistent_correct": correct / repeated if repeated else 0.0,
        "repeated": float(repeated),
    }


def _repeated_strings(example: Example, min_occurrences: int) -> List[Tuple[set, List[str]]]:
    """Per gold string occurring ``min_occurrences``+ times: its gold labels, and the
    predicted label of each occurrence."""
    predicted = {(e.start_char, e.end_char): e.label_ for e in example.predicted.ents}
    occurrences: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for ent in example.reference.ents:
        label = predicted.get((ent.start_char, ent.end_char), "O")
        occurrences[ent.text].append((ent.label_, label))
    return [
        ({gold for gold, _ in pairs}, [label for _, label in pairs])
        for pairs in occurrences.values()
        if len(pairs) >= min_occurrences
    ]
