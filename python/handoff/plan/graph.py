"""The graph algorithms of compiling and checking a plan: a deterministic topological order (Kahn),
one cycle of a directed graph, and what is reachable from some nodes — iterative, so deep graphs
do not recurse."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

from ..errors import HandoffError

N = TypeVar("N", bound=Hashable)


def reachable(starts: Iterable[N], edges: Mapping[N, Iterable[N]]) -> set[N]:
    """``starts`` and every node reachable from them along ``edges`` (node -> its next nodes; a node
    that is not a key has none). Iterative: a deep graph does not recurse."""
    seen = set(starts)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def topological_order(inputs: Mapping[str, set[str]], where: str) -> dict[str, int]:
    """Position of every node of ``inputs`` (node -> its inputs) in a deterministic topological
    order (Kahn's algorithm, ties broken by unique_id); inputs that are not keys (sources) are
    ignored. A cycle is a HandoffError naming its nodes."""
    waiting = {n: {d for d in deps if d in inputs} for n, deps in inputs.items()}
    dependants: dict[str, list[str]] = defaultdict(list)
    for node, deps in waiting.items():
        for dep in deps:
            dependants[dep].append(node)
    remaining = {n: len(deps) for n, deps in waiting.items()}
    ready = [n for n, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    order: dict[str, int] = {}
    while ready:
        node = heapq.heappop(ready)
        order[node] = len(order)
        for nxt in dependants[node]:
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) < len(inputs):
        cycle = find_cycle({n: sorted(d) for n, d in waiting.items() if n not in order})
        raise HandoffError(f"the dbt graph has a cycle: {' -> '.join(cycle)}", where=where,
                           hint="dbt refuses cyclic projects: re-run `dbt parse` and compile the new manifest")
    return order


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """One cycle of the directed graph ``edges`` (node -> the nodes it waits on), as a closed path
    ``[a, b, ..., a]``; ``[]`` when the graph is acyclic. Iterative (deep graphs do not recurse)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in sorted(edges):
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(sorted(edges.get(root, ())))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt in edges and not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return []
