"""Pairwise precision, recall and F1 of a clustering against the truth.

A pair of mentions is *predicted* when both are in one predicted cluster and *true*
when both are one real entity. Counts come from cluster sizes, never from listing
pairs: n mentions together make n(n-1)/2 pairs, so

    predicted = sum over clusters C of |C| choose 2
    true      = sum over entities E of |E| choose 2
    correct   = sum over (E, C) of |E ∩ C| choose 2

The truth decides which mentions count: a mention the truth knows but the clustering
does not (a record the hub refused, a row an extraction missed) is a cluster of its
own, so it costs recall; a mention only the clustering knows is ignored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Hashable, Mapping


@dataclass(frozen=True)
class Score:
    mentions: int
    #: truth mentions the clustering did not place (scored as singletons)
    missing: int
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
        }


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(truth: Mapping[Hashable, Hashable], clusters: Mapping[Hashable, Hashable]) -> Score:
    """`truth` maps each mention to its true entity, `clusters` to its predicted
    cluster."""
    by_entity: Counter = Counter()
    by_cluster: Counter = Counter()
    by_both: Counter = Counter()
    missing = 0
    for mention, entity in truth.items():
        cluster = clusters.get(mention)
        if cluster is None:
            missing += 1
            cluster = ("unplaced", mention)
        by_entity[entity] += 1
        by_cluster[cluster] += 1
        by_both[(entity, cluster)] += 1
    return Score(
        mentions=len(truth),
        missing=missing,
        predicted_pairs=sum(_pairs(n) for n in by_cluster.values()),
        true_pairs=sum(_pairs(n) for n in by_entity.values()),
        correct_pairs=sum(_pairs(n) for n in by_both.values()),
    )


def clusters_from_links(nodes, links) -> dict:
    """Connected components of `links` (pairs of nodes) over `nodes`: node → the
    component's representative. Used to turn a list of true links into entities."""
    parent = {node: node for node in nodes}

    def find(node):
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {node: find(node) for node in parent}


def _self_test() -> None:
    # Truth: a, b, c are X; d is Y; e is Z. Clusters: {a, b}, {c, d}; e unplaced.
    truth = {"a": "X", "b": "X", "c": "X", "d": "Y", "e": "Z"}
    clusters = {"a": 1, "b": 1, "c": 2, "d": 2, "f": 2}
    score = pairwise(truth, clusters)
    assert (score.predicted_pairs, score.true_pairs, score.correct_pairs, score.missing) == (2, 3, 1, 1), score
    assert abs(score.precision - 0.5) < 1e-12 and abs(score.recall - 1 / 3) < 1e-12
    components = clusters_from_links("abcde", [("a", "b"), ("c", "b"), ("d", "e")])
    assert components == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "d"}, components


if __name__ == "__main__":
    _self_test()
    print("scoring: self-test passed")
