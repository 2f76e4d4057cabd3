"""Linked-table disclosure control: the attacker's linear bounds, and secondary suppression
across every open table of a publication (docs/open-data.md, contract section 5).

The open tables are modelled as cells (a count, its true value, its threshold, whether it is
masked) tied by the linear relations an attacker knows: a total is the sum of its parts (the
`total` category, an EPCI or a département as the sum of its communes, `n_attributions` =
outside + inside QPV) and a part is at most its whole. For each masked cell, the attacker's
interval is its minimum and maximum by linear programming (HiGHS) over every relation and
the bounds a masked cell is known to lie in.

The attacker is taken stronger than a real one, so that what resists it resists any reader:
it is assumed to know which masked cells are primary (value in 1..seuil-1); of the others
(secondary) it knows that they are at least 1, as of every masked cell (a 0 is never masked). A masked cell is exposed when its interval, rounded inward to
integers, holds fewer than two values. Repair (secondary suppression) masks the smallest
published non-zero cell of a relation of an exposed cell, and audits again, until no masked
cell is exposed.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

EPS = 1e-6


@dataclass
class Cell:
    key: Hashable
    value: int
    seuil: int
    masked: bool
    primary: bool = False

    def bounds(self) -> tuple[float, float | None]:
        """What the (strong) attacker knows of a masked cell before any relation."""
        if self.primary:
            return 1.0, float(self.seuil - 1)
        return 1.0, None


@dataclass(frozen=True)
class Relation:
    """sum(coef * cell) == 0 (`equal`) or <= 0."""

    terms: tuple[tuple[int, int], ...]
    equal: bool = True


@dataclass
class LinkedTable:
    cells: list[Cell] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    index: dict[Hashable, int] = field(default_factory=dict)
    dropped: int = 0  # relations that do not hold on the true values (hierarchy mismatch)

    def add(self, key: Hashable, value: int, seuil: int, masked: bool) -> int:
        self.index[key] = len(self.cells)
        self.cells.append(Cell(key, value, seuil, masked, masked and 1 <= value < seuil))
        return self.index[key]

    def total(self, whole: Hashable, parts: Iterable[Hashable]) -> None:
        """whole = sum(parts); parts that are not cells count as 0."""
        if whole not in self.index:
            return
        terms = [(self.index[whole], -1)] + [(self.index[p], 1) for p in parts if p in self.index]
        self._relation(Relation(tuple(terms), equal=True))

    def at_most(self, part: Hashable, whole: Hashable) -> None:
        if part in self.index and whole in self.index:
            self._relation(Relation(((self.index[part], 1), (self.index[whole], -1)), False))

    def _relation(self, relation: Relation) -> None:
        lhs = sum(c * self.cells[i].value for i, c in relation.terms)
        if (lhs != 0) if relation.equal else (lhs > 0):
            self.dropped += 1
            return
        self.relations.append(relation)


def _components(table: LinkedTable) -> list[tuple[list[int], list[Relation]]]:
    """Masked cells grouped by the relations linking them, with those relations."""
    parent = {i: i for i, c in enumerate(table.cells) if c.masked}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    involved = []
    for relation in table.relations:
        masked = [i for i, _ in relation.terms if i in parent]
        if not masked:
            continue
        involved.append((masked[0], relation))
        for other in masked[1:]:
            parent[find(other)] = find(masked[0])
    groups: dict[int, tuple[list[int], list[Relation]]] = {}
    for i in parent:
        groups.setdefault(find(i), ([], []))[0].append(i)
    for first, relation in involved:
        groups[find(first)][1].append(relation)
    return list(groups.values())


def _component_intervals(
    table: LinkedTable, cells: list[int], relations: list[Relation]
) -> dict[int, tuple[float, float]]:
    position = {i: k for k, i in enumerate(cells)}
    bounds = [table.cells[i].bounds() for i in cells]
    if not relations:
        return {
            i: (lo, math.inf if hi is None else hi)
            for i, (lo, hi) in zip(cells, bounds, strict=True)
        }
    rows: dict[bool, tuple[list[int], list[int], list[float], list[float]]] = {
        True: ([], [], [], []),
        False: ([], [], [], []),
    }
    for relation in relations:
        r, c, v, rhs = rows[relation.equal]
        constant = 0
        for i, coef in relation.terms:
            if i in position:
                r.append(len(rhs))
                c.append(position[i])
                v.append(coef)
            else:
                constant += coef * table.cells[i].value
        rhs.append(-constant)

    def matrix(equal: bool) -> tuple[csr_matrix | None, np.ndarray | None]:
        r, c, v, rhs = rows[equal]
        if not rhs:
            return None, None
        return csr_matrix((v, (r, c)), shape=(len(rhs), len(cells))), np.array(rhs)

    a_eq, b_eq = matrix(True)
    a_ub, b_ub = matrix(False)
    out = {}
    for k, i in enumerate(cells):
        ends = []
        for sign in (1.0, -1.0):
            objective = np.zeros(len(cells))
            objective[k] = sign
            result = linprog(
                objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs"
            )
            if result.status == 3:  # unbounded: only the maximum can be
                ends.append(math.inf)
            elif result.status != 0:
                raise RuntimeError(
                    f"disclosure audit: LP failed for {table.cells[i].key}: {result.message}"
                )
            else:
                ends.append(sign * result.fun)
        out[i] = (ends[0], ends[1])
    return out


def intervals(table: LinkedTable) -> dict[int, tuple[float, float]]:
    """The attacker's [min, max] of every masked cell, from every relation."""
    out: dict[int, tuple[float, float]] = {}
    for cells, relations in _components(table):
        out |= _component_intervals(table, cells, relations)
    return out


def is_exposed(low: float, high: float) -> bool:
    """Fewer than two integer values left in [low, high]."""
    if math.isinf(high):
        return False
    return math.floor(high + EPS) - math.ceil(low - EPS) < 1


def exposed(table: LinkedTable) -> list[int]:
    return sorted(i for i, (lo, hi) in intervals(table).items() if is_exposed(lo, hi))


def _by_cell(table: LinkedTable) -> dict[int, list[Relation]]:
    by_cell: dict[int, list[Relation]] = {}
    for relation in table.relations:
        for i, _ in relation.terms:
            by_cell.setdefault(i, []).append(relation)
    return by_cell


def _candidate(table: LinkedTable, cell: int, by_cell: dict[int, list[Relation]]) -> int | None:
    """The smallest published non-zero cell of a relation of `cell`, else of a relation of
    the masked cells met on the way (breadth first)."""
    frontier, seen = {cell}, {cell}
    while frontier:
        published, masked = set(), set()
        for i in frontier:
            for relation in by_cell.get(i, []):
                for j, _ in relation.terms:
                    c = table.cells[j]
                    if not c.masked and c.value > 0:
                        published.add(j)
                    elif c.masked and j not in seen:
                        masked.add(j)
        if published:
            return min(published, key=lambda j: (table.cells[j].value, j))
        seen |= masked
        frontier = masked
    return None


def protect(table: LinkedTable, max_rounds: int = 100_000) -> int:
    """Secondary suppression until no masked cell is exposed; returns the cells masked."""
    done: dict[frozenset[int], bool] = {}  # components already audited safe
    added = 0
    by_cell = _by_cell(table)
    for _ in range(max_rounds):
        changed = False
        newly: set[int] = set()
        for cells, relations in _components(table):
            signature = frozenset(cells)
            if done.get(signature):
                continue
            if newly and any(i in newly for r in relations for i, _ in r.terms):
                continue  # grown by this round's suppression: audited next round
            found = [
                i
                for i, (lo, hi) in _component_intervals(table, cells, relations).items()
                if is_exposed(lo, hi)
            ]
            if not found:
                done[signature] = True
                continue
            # One suppression per exposed cell not already touched by this round's.
            for cell in found:
                if any(j in newly for r in by_cell.get(cell, []) for j, _ in r.terms):
                    continue
                chosen = _candidate(table, cell, by_cell)
                if chosen is None:
                    raise RuntimeError(
                        f"cannot protect {table.cells[cell].key}: "
                        + repr(
                            [
                                (table.cells[j].key, table.cells[j].value, table.cells[j].masked)
                                for r in by_cell.get(cell, [])
                                for j, _ in r.terms
                            ]
                        )
                    )
                table.cells[chosen].masked = True
                newly.add(chosen)
                added += 1
                changed = True
        if not changed:
            return added
    raise RuntimeError("secondary suppression did not converge")


# --- the territorial hierarchy ------------------------------------------------------------

# year -> commune code -> (EPCI code, département code), either may be None.
Hierarchy = dict[int, dict[str, tuple[str | None, str | None]]]


def infer_parents(
    children: dict[str, np.ndarray], parents: dict[str, np.ndarray]
) -> dict[str, str]:
    """Which parent each child belongs to, when every parent's vector is the sum of its
    children's (each child in at most one parent): a 0/1 program (HiGHS), on the pairs where
    the child's vector is within the parent's."""
    from scipy.optimize import LinearConstraint, milp

    names, pnames = list(children), list(parents)
    pairs = [
        (c, p)
        for c, cv in enumerate(children.values())
        for p, pv in enumerate(parents.values())
        if np.all(cv <= pv)
    ]
    if not pairs or not pnames:
        return {}
    dims = len(next(iter(parents.values())))
    r, col, v = [], [], []
    for k, (c, p) in enumerate(pairs):
        vector = children[names[c]]
        for j in np.nonzero(vector)[0]:
            r.append(p * dims + int(j))
            col.append(k)
            v.append(float(vector[j]))
    a_sum = csr_matrix((v, (r, col)), shape=(len(pnames) * dims, len(pairs)))
    target = np.concatenate([parents[p] for p in pnames]).astype(float)
    one = csr_matrix(
        (np.ones(len(pairs)), ([c for c, _ in pairs], range(len(pairs)))),
        shape=(len(names), len(pairs)),
    )
    result = milp(
        np.zeros(len(pairs)),
        constraints=[LinearConstraint(a_sum, target, target), LinearConstraint(one, 0, 1)],
        integrality=np.ones(len(pairs)),
        bounds=(0, 1),
    )
    if result.status != 0:
        raise RuntimeError(f"cannot infer the territorial hierarchy: {result.message}")
    return {names[c]: pnames[p] for k, (c, p) in enumerate(pairs) if result.x[k] > 0.5}
