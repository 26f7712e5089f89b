"""The cache's domain index (domain_index.py) against counting from scratch: after every
one of a few thousand random changes (nodes coming, going and relabelled, pods assumed,
confirmed, moved, terminating, forgotten and deleted, namespaces relabelled), what it
holds equals what walking every node and placed pod gives."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from api.selectors import LabelSelector
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.domain_index import Kind, Pair, SpreadDomains, Terms
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.terms import AffinityTerm, SpreadConstraint, parse_affinity_term
from tests.controlplane.scheduler.builders import info, node, pod

Obj = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"

CARRIED: dict[Kind, Callable[[PodInfo], Terms]] = {
    Kind.REQUIRED_AFFINITY: lambda p: p.required_affinity,
    Kind.REQUIRED_ANTI_AFFINITY: lambda p: p.required_anti_affinity,
    Kind.PREFERRED_AFFINITY: lambda p: p.preferred_affinity,
    Kind.PREFERRED_ANTI_AFFINITY: lambda p: p.preferred_anti_affinity,
}


def raw_term(app: str, key: str, **extra: Any) -> Obj:
    return {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key, **extra}


PROD: Obj = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}
AFFINITIES: list[Obj | None] = [
    None,
    {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [raw_term("a", HOST)]}},
    {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [raw_term("b", ZONE)]}},
    {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 5, "podAffinityTerm": raw_term("b", ZONE)}]}},
    {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 3, "podAffinityTerm": raw_term("a", ZONE, **PROD)}]},
     "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
         raw_term("a", HOST), raw_term("a", ZONE)]}},
]  # fmt: skip


def term(app: str, key: str, namespace: str = "default", **extra: Any) -> AffinityTerm:
    return parse_affinity_term(raw_term(app, key, **extra), "t", namespace=namespace, labels={})


QUESTIONS: list[Terms] = [
    (term("a", HOST),),
    (term("b", ZONE),),
    (term("a", ZONE, **PROD),),
    (term("a", ZONE, namespaces=["default", "ns1"]), term("a", HOST)),
    (term("b", "rack", namespace="ns1"),),
]


def spread(key: str, app: str = "", owner: str = "") -> SpreadConstraint:
    selector = LabelSelector.from_object({"matchLabels": {"app": app}}) if app else LabelSelector()
    return SpreadConstraint(1, key, True, selector, owner_uid=f"uid-{owner}" if owner else "")


SPREADS: list[tuple[str, SpreadConstraint, frozenset[str]]] = [
    ("default", spread(ZONE, "a"), frozenset({ZONE})),
    ("default", spread(ZONE, "b"), frozenset({ZONE, "rack"})),
    ("ns1", spread(HOST, "a"), frozenset({HOST, ZONE})),
    ("default", spread(ZONE, owner="rs"), frozenset({ZONE})),
]


def expected_spread(
    cache: Cache, namespace: str, c: SpreadConstraint, keys: frozenset[str]
) -> SpreadDomains:
    expected = SpreadDomains()
    for n in cache.node_list():
        if not keys <= n.labels.keys():
            continue
        value = n.labels[c.topology_key]
        expected.nodes[value] += 1
        for p in n.pods.values():
            if p.namespace == namespace and not p.deleting and c.matches(p.labels, p.owner_uid):
                expected.pods[value] += 1
    return expected


def expected_carried(cache: Cache, kind: Kind) -> dict[AffinityTerm, Counter[Pair]]:
    table: dict[AffinityTerm, Counter[Pair]] = {}
    for n in cache.node_list():
        for p in n.pods.values():
            for t in CARRIED[kind](p):
                value = n.labels.get(t.topology_key)
                if value is not None:
                    table.setdefault(t, Counter())[(t.topology_key, value)] += 1
    return table


def expected_matching(cache: Cache, terms: Terms) -> Counter[Pair]:
    counts: Counter[Pair] = Counter()
    for n in cache.node_list():
        for p in n.pods.values():
            ns = cache.namespace_labels(p.namespace)
            if all(t.matches(p.namespace, p.labels, ns) for t in terms):
                for t in terms:
                    value = n.labels.get(t.topology_key)
                    if value is not None:
                        counts[(t.topology_key, value)] += 1
    return counts


def random_node(rng: random.Random) -> Obj:
    labels = {}
    if rng.random() < 0.8:
        labels[ZONE] = rng.choice(["z1", "z2"])
    if rng.random() < 0.5:
        labels["rack"] = rng.choice(["r1", "r2", "r3"])
    return node(f"n{rng.randrange(6)}", labels=labels)


def random_pod(rng: random.Random, name: str) -> Obj:
    made = pod(
        name,
        namespace=rng.choice(["default", "ns1"]),
        labels={"app": rng.choice("ab")},
        affinity=rng.choice(AFFINITIES),
        owner=rng.choice([None, "rs", "other"]),
    )
    if rng.random() < 0.2:
        made["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return made


def change(rng: random.Random, cache: Cache, pods: dict[str, Obj]) -> None:
    """One random change to the cache; ``pods`` holds the pod objects by name."""
    roll = rng.random()
    name = f"p{rng.randrange(20)}"
    if roll < 0.15:
        cache.add_node(random_node(rng))
    elif roll < 0.2:
        cache.remove_node(f"n{rng.randrange(6)}")
    elif roll < 0.25:
        labels = rng.choice([None, {"env": "prod"}, {"env": "dev"}])
        cache.set_namespace(rng.choice(["default", "ns1"]), labels)
    elif roll < 0.5:
        p = pods.get(name)
        if p is None or info(p).key not in cache:
            p = pods[name] = random_pod(rng, name)
            cache.assume(info(p), f"n{rng.randrange(7)}")  # n6: a node not known yet
    elif roll < 0.7:
        p = pods.get(name)
        if p is not None:  # confirmed where assumed, or elsewhere; labels may change
            moved = {**p, "spec": {**p["spec"], "nodeName": f"n{rng.randrange(6)}"}}
            moved["metadata"] = {**p["metadata"], "labels": {"app": rng.choice("ab")}}
            pods[name] = moved
            cache.add_pod(info(moved))
    elif roll < 0.8:
        p = pods.get(name)
        if p is not None:
            cache.forget(info(p).key)
    else:
        p = pods.get(name)
        if p is not None:
            cache.remove_pod(info(p).key)


@pytest.mark.parametrize("seed", range(8))
def test_the_index_equals_counting_every_pod(seed: int) -> None:
    rng = random.Random(seed)
    cache = Cache()
    pods: dict[str, Obj] = {}
    for step in range(600):
        change(rng, cache, pods)
        for kind in Kind:
            assert dict(cache.carried_terms(kind)) == expected_carried(cache, kind), (step, kind)
        # Some questions often, the last one rarely (its answer is dropped and made again).
        asked = QUESTIONS[:4] if step % 50 else QUESTIONS
        for terms in rng.sample(asked, 2):
            assert cache.domains_matching(terms) == expected_matching(cache, terms), (step, terms)
        for namespace, c, keys in rng.sample(SPREADS, 2):
            expected = expected_spread(cache, namespace, c, keys)
            assert cache.spread_domains(namespace, c, keys) == expected, (step, c, keys)


def test_a_kept_answer_follows_pods_and_labels() -> None:
    cache = Cache()
    cache.add_node(node("a", labels={ZONE: "z1"}))
    cache.add_node(node("b", labels={ZONE: "z1"}))
    question = (term("a", ZONE),)
    assert cache.domains_matching(question) == {}
    cache.add_pod(info(pod("p", labels={"app": "a"}, node_name="a")))
    cache.assume(info(pod("q", labels={"app": "a"})), "b")
    assert cache.domains_matching(question) == {(ZONE, "z1"): 2}
    cache.add_node(node("b", labels={ZONE: "z2"}))
    assert cache.domains_matching(question) == {(ZONE, "z1"): 1, (ZONE, "z2"): 1}
    cache.remove_node("a")  # a deleted node's pods do not count
    assert cache.domains_matching(question) == {(ZONE, "z2"): 1}
    cache.forget("default/q")
    assert cache.domains_matching(question) == {}


def test_carried_terms_are_counted_once_per_distinct_term() -> None:
    cache = Cache()
    cache.add_node(node("a"))
    cache.add_node(node("b"))
    anti = AFFINITIES[1]
    for i, where in enumerate("aab"):
        cache.add_pod(info(pod(f"r{i}", labels={"app": "a"}, affinity=anti, node_name=where)))
    carried = cache.carried_terms(Kind.REQUIRED_ANTI_AFFINITY)
    assert carried == {term("a", HOST): {(HOST, "a"): 2, (HOST, "b"): 1}}
    for i in range(3):
        cache.remove_pod(f"default/r{i}")
    assert cache.carried_terms(Kind.REQUIRED_ANTI_AFFINITY) == {}
