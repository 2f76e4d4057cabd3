"""Linked-table disclosure control: the attacker's linear bounds, and secondary suppression
across every open table of a publication (docs/open-data.md, contract section 5).

The open tables are modelled as cells (a count, its true value, its threshold, whether it is
masked) tied by the linear relations an attacker knows: a total is the sum of its parts (the
`total` category, an EPCI or a département as the sum of its communes, `n_attributions` =
outside + inside QPV) and a part is at most its whole. For each masked cell, the attacker's
interval is its minimum and maximum by linear programming (HiGHS) over every relation and
the bounds a masked cell is known to lie in.

The attacker is the contract's: it knows the hierarchy, every published cell and every
relation, and that a masked cell is at least 1 (a 0 is never masked) but not which masked
cells are primary. A masked cell is exposed when its interval, rounded inward to integers,
holds fewer than two values. A stronger attacker (`strong=True`: it also knows that a
primary cell lies in 1..seuil-1) is kept for measuring what is left to a reader who guesses
more. Repair (`protect`) masks published cells linked to the exposed cells and audits again
the cells whose interval can have changed, until none is exposed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Hashable, Iterable
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import highspy
import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from pipelines.processes import spawn_pool

EPS = 1e-6


@dataclass
class Cell:
    key: Hashable
    value: int
    seuil: int
    masked: bool
    primary: bool = False
    # A quantity the attacker knows exists but no table publishes (a QPV's part in one of its
    # communes): a variable of every program, at least 0, never audited nor masked by the
    # repair; its `value` is one feasible value, not necessarily the true one.
    hidden: bool = False
    # A cell the repair never masks for another: published only where an audit of everything
    # linked to it, with it published, finds nothing exposed (`_settle`); masked otherwise.
    deferred: bool = False

    def bounds(self, strong: bool = False) -> tuple[float, float | None]:
        """What the attacker knows of a masked cell before any relation: the strong one knows
        which masked cells are primary, the contract's one (`strong=False`) does not."""
        if self.hidden:
            return 0.0, None
        if self.primary and strong:
            return 1.0, float(self.seuil - 1)
        return 1.0, None  # a 0 is never masked


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

    def add(
        self, key: Hashable, value: int, seuil: int, masked: bool, deferred: bool = False
    ) -> int:
        self.index[key] = len(self.cells)
        primary = masked and 1 <= value < seuil
        self.cells.append(Cell(key, value, seuil, masked, primary, deferred=deferred))
        return self.index[key]

    def hide(self, key: Hashable, value: int) -> int:
        """An unpublished quantity (`Cell.hidden`), `value` a feasible one."""
        self.index[key] = len(self.cells)
        self.cells.append(Cell(key, value, 0, True, hidden=True))
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

    def at_most_sum(self, parts: Iterable[Hashable], wholes: Iterable[Hashable]) -> None:
        """sum(parts) <= sum(wholes); cells that are not there count as 0."""
        terms = [(self.index[p], 1) for p in parts if p in self.index]
        terms += [(self.index[w], -1) for w in wholes if w in self.index]
        if any(c > 0 for _, c in terms):
            self._relation(Relation(tuple(terms), False))

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


def _lp(
    table: LinkedTable, cells: list[int], relations: list[Relation]
) -> tuple[dict[int, int], dict[str, object]]:
    """The attacker's linear program of one component: its masked cells are the variables,
    the published cells of its relations constants."""
    position = {i: k for k, i in enumerate(cells)}
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
    problem: dict[str, object] = {}
    for equal, suffix in ((True, "eq"), (False, "ub")):
        r, c, v, rhs = rows[equal]
        if rhs:
            problem[f"A_{suffix}"] = csr_matrix((v, (r, c)), shape=(len(rhs), len(cells)))
            problem[f"b_{suffix}"] = np.array(rhs)
    return position, problem


def _solve(
    table: LinkedTable,
    objective: np.ndarray,
    problem: dict[str, object],
    bounds: list[tuple[float, float | None]],
) -> np.ndarray | None:
    """The optimum's point, or None when the objective is unbounded."""
    result = linprog(objective, bounds=bounds, method="highs", **problem)
    if result.status == 3:
        return None
    if result.status != 0:
        raise RuntimeError(f"disclosure audit: LP failed: {result.message}")
    return np.asarray(result.x)


def _component_intervals(
    table: LinkedTable, cells: list[int], relations: list[Relation], strong: bool = False
) -> dict[int, tuple[float, float]]:
    bounds = [table.cells[i].bounds(strong) for i in cells]
    if not relations:
        return {
            i: (lo, math.inf if hi is None else hi)
            for i, (lo, hi) in zip(cells, bounds, strict=True)
        }
    _, problem = _lp(table, cells, relations)
    out = {}
    for k, i in enumerate(cells):
        ends = []
        for sign in (1.0, -1.0):
            objective = np.zeros(len(cells))
            objective[k] = sign
            x = _solve(table, objective, problem, bounds)
            ends.append(math.inf if x is None else float(x[k]))
        out[i] = (ends[0], ends[1])
    return out


def intervals(table: LinkedTable, strong: bool = False) -> dict[int, tuple[float, float]]:
    """The attacker's [min, max] of every masked cell, from every relation (two LPs per
    masked cell: the full report; `exposed` and `protect` only decide exposure, faster).
    Solved with scipy's `linprog`, one fresh program per bound, on purpose: the tests check
    the repair's warm-started HiGHS audit against this independent path."""
    out: dict[int, tuple[float, float]] = {}
    for cells, relations in _components(table):
        out |= _component_intervals(table, cells, relations, strong)
    return {i: bounds for i, bounds in out.items() if not table.cells[i].hidden}


def is_exposed(low: float, high: float) -> bool:
    """Fewer than two integer values left in [low, high]."""
    if math.isinf(high):
        return False
    return math.floor(high + EPS) - math.ceil(low - EPS) < 1


@dataclass
class _Component:
    """One component's attacker program as plain arrays: built from the table in the main
    process, audited in a worker (the table itself never crosses a process boundary)."""

    cells: list[int]  # table index of each variable
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray  # _INF when unbounded
    row_lower: np.ndarray
    row_upper: np.ndarray
    starts: np.ndarray
    index: np.ndarray
    coefs: np.ndarray
    check: list[int]  # positions to audit
    alone: list[int]  # positions alone masked in an equation: exposed without an LP


def _component(
    table: LinkedTable,
    cells: list[int],
    relations: list[Relation],
    check: set[int],
    strong: bool = False,
) -> _Component:
    position = {i: k for k, i in enumerate(cells)}
    bounds = [table.cells[i].bounds(strong) for i in cells]
    row_lower: list[float] = []
    row_upper: list[float] = []
    starts: list[int] = []
    index: list[int] = []
    coefs: list[float] = []
    alone: set[int] = set()
    every = table.cells
    for relation in relations:
        constant = 0
        start = len(index)
        starts.append(start)
        for i, coef in relation.terms:
            k = position.get(i)
            if k is None:
                constant += coef * every[i].value
            else:
                index.append(k)
                coefs.append(float(coef))
        row_lower.append(-constant if relation.equal else -_INF)
        row_upper.append(-constant)
        if relation.equal and len(index) == start + 1:
            alone.add(index[start])
    return _Component(
        cells=cells,
        value=np.array([table.cells[i].value for i in cells], dtype=float),
        lower=np.array([lo for lo, _ in bounds], dtype=float),
        upper=np.array([_INF if hi is None else hi for _, hi in bounds], dtype=float),
        row_lower=np.array(row_lower, dtype=float),
        row_upper=np.array(row_upper, dtype=float),
        starts=np.array(starts, dtype=np.int32),
        index=np.array(index, dtype=np.int32),
        coefs=np.array(coefs, dtype=float),
        check=sorted(position[i] for i in check if not table.cells[i].hidden),
        alone=sorted(alone),
    )


class _Program:
    """A component's program kept in one HiGHS instance: the audit solves it hundreds of times
    with another objective or other caps, and HiGHS's primal simplex restarts each solve from
    the last basis (a few ms for 4,600 cells where a fresh `linprog` took 77 ms; nationally
    the difference between minutes and hours)."""

    def __init__(self, component: _Component) -> None:
        self.size = len(component.cells)
        self.lower, self.upper = component.lower, component.upper
        # The base class: `Highs` adds Python callbacks (unused here) and prints a banner on
        # the process's C stdout, which no option silences before it is built.
        highs = highspy._Highs()  # type: ignore[attr-defined]
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("threads", 1)  # processes, not threads, share the cores out
        highs.setOptionValue("presolve", "off")  # a warm basis is worth more than presolve
        # The first solve starts from the slack basis: the dual simplex gets there faster (a
        # third less on the repair's later rounds, one cold solve each); every later one is
        # primal, from the last basis, which a new objective keeps feasible.
        highs.setOptionValue("simplex_strategy", 1)
        self.warm = False
        highs.addVars(self.size, self.lower, self.upper)
        highs.addRows(
            len(component.row_lower),
            component.row_lower,
            component.row_upper,
            len(component.index),
            component.starts,
            component.index,
            component.coefs,
        )
        self.highs = highs
        self.columns = np.arange(self.size, dtype=np.int32)
        self.cost = np.zeros(self.size)
        self.caps: tuple[np.ndarray, np.ndarray] = (self.lower, self.upper)

    def minimum(
        self, cost: np.ndarray, caps: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray | None:
        """A point minimising `cost` within `caps` (the cells' own bounds by default), or None
        when the minimum is unbounded."""
        changed = np.flatnonzero(cost != self.cost).astype(np.int32)
        if len(changed):
            self.highs.changeColsCost(len(changed), changed, cost[changed])
            self.cost = cost.copy()
        caps = caps or (self.lower, self.upper)
        if caps[0] is not self.caps[0] or caps[1] is not self.caps[1]:
            self.highs.changeColsBounds(self.size, self.columns, caps[0], caps[1])
            self.caps = caps
        self.highs.run()
        if not self.warm:
            self.highs.setOptionValue("simplex_strategy", 4)
            self.warm = True
        status = self.highs.getModelStatus()
        if status in _UNBOUNDED:
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(
                f"disclosure audit: LP failed: {self.highs.modelStatusToString(status)}"
            )
        return np.asarray(self.highs.getSolution().col_value)


_INF = highspy.kHighsInf
_UNBOUNDED = (
    highspy.HighsModelStatus.kUnbounded,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,  # the true values are feasible
)


def _exposed_in(component: _Component) -> list[int]:
    """Which cells of `component.check` are exposed, as table indices.

    The true values are feasible, so a cell is safe exactly when a feasible point moves it by
    at least 1 up or down; every point an LP returns certifies every cell it moves so. Without
    LP: a cell alone masked in an equation is exposed. Then a few LPs certify many cells at
    once: maximise (minimise) the sum of the unsettled cells, each capped at its value + 1
    (- 1), and every cell that reaches its cap is safe. The cells left get their max, and
    their min when the max did not settle them and the cell can go lower: an exposed cell
    costs one or two LPs, which is most of the audit (`intervals` is the independent,
    slower reference the tests compare with)."""
    found = set(component.check).intersection(component.alone)
    todo = set(component.check) - found
    if not todo:
        return sorted(component.cells[k] for k in found)
    program = _Program(component)
    value = component.value
    # The cells left to settle as a mask (vectorised: a large component's first audit has
    # thousands, tested against every point an LP returns).
    left = np.zeros(program.size, dtype=bool)
    left[list(todo)] = True

    for sign in (1.0, -1.0):
        if sign > 0:
            caps = (program.lower, np.minimum(program.upper, value + 1.0))
        else:
            caps = (np.maximum(program.lower, value - 1.0), program.upper)
        while left.any():
            cost = np.where(left, -sign, 0.0)
            x = program.minimum(cost, caps)
            if x is None:  # cannot be: every variable is bounded in the direction optimised
                break
            moved = left & (sign * (x - value) >= 1 - EPS)
            if not moved.any():
                break
            left &= ~moved
    while left.any():
        k = int(np.argmax(left))  # the first cell left
        left[k] = False
        cost = np.zeros(program.size)
        cost[k] = -1.0
        x = program.minimum(cost)
        if x is None:  # unbounded above: safe
            continue
        left &= np.abs(x - value) < 1 - EPS  # every cell this point moves by 1 is safe
        high = float(x[k])
        if high >= value[k] + 1 - EPS:
            continue
        if program.lower[k] > value[k] - 1 + EPS:  # it cannot go lower either
            found.add(k)
            continue
        cost[k] = 1.0
        x = program.minimum(cost)
        if x is None:  # cannot be: every cell is at least 1
            continue
        left &= np.abs(x - value) < 1 - EPS
        if is_exposed(float(x[k]), high):
            found.add(k)
    return sorted(component.cells[k] for k in found)


def _audit(
    table: LinkedTable,
    cells: list[int],
    relations: list[Relation],
    check: set[int],
    strong: bool = False,
) -> set[int]:
    """Which cells of `check` (masked cells of the component `cells`) are exposed."""
    return set(_exposed_in(_component(table, cells, relations, check, strong)))


# Components this small are audited in the main process: a worker's round trip costs more.
_POOLED = 200


def _audit_all(
    table: LinkedTable,
    components: list[tuple[list[int], list[Relation]]],
    check: set[int],
    pool: Executor | None,
) -> set[int]:
    """The exposed cells of `check` over `components`; the large components in `pool` (each
    component's audit is independent, so the set found does not depend on who audits it)."""
    return _audit_programs(
        [
            _component(table, cells, relations, check.intersection(cells))
            for cells, relations in components
        ],
        pool,
    )


def _audit_programs(programs: list[_Component], pool: Executor | None) -> set[int]:
    found: set[int] = set()
    pending = []
    for program in sorted(programs, key=lambda p: -len(p.cells)):
        if pool is not None and len(program.cells) >= _POOLED:
            pending.append(pool.submit(_exposed_in, program))
        else:
            found.update(_exposed_in(program))
    for future in pending:
        found.update(future.result())
    return found


class _Workers:
    """The audit's worker processes, spawned the first time two large components wait
    together (a spawn costs about a second; most repairs never need one)."""

    def __init__(self, stack: ExitStack, enabled: bool = True) -> None:
        self.stack = stack
        self.enabled = enabled  # not in a worker process already
        self.pool: Executor | None = None

    def pool_for(self, sizes: Iterable[int]) -> Executor | None:
        if (
            self.pool is None
            and self.enabled
            and _WORKERS > 1
            and sum(n >= _POOLED for n in sizes) > 1
        ):
            self.pool = _spawn_pool(self.stack)
        return self.pool


def _spawn_pool(stack: ExitStack) -> Executor:
    """`_WORKERS` spawned processes (not forked: the parent holds DuckDB and polars threads),
    shut down with `stack`."""
    return stack.enter_context(spawn_pool(_WORKERS))


def exposed(table: LinkedTable) -> list[int]:
    """The masked cells whose interval holds fewer than two integers."""
    out: set[int] = set()
    for cells, relations in _components(table):
        out |= _audit(table, cells, relations, set(cells))
    return sorted(out)


def _by_cell(relations: Iterable[Relation]) -> dict[int, list[Relation]]:
    by_cell: dict[int, list[Relation]] = {}
    for relation in relations:
        for i, _ in relation.terms:
            by_cell.setdefault(i, []).append(relation)
    return by_cell


def _cascade(table: LinkedTable, j: int, by_cell: dict[int, list[Relation]]) -> int:
    """How many equations would hold `j` as their only masked cell once it is masked: each
    would expose it at once and call for one more suppression."""
    return sum(
        1
        for relation in by_cell.get(j, [])
        if relation.equal and not any(table.cells[i].masked for i, _ in relation.terms if i != j)
    )


def _level(key: Hashable) -> int:
    """0 for a commune cell (or any table without levels), 1 for an EPCI, 2 for a département:
    the repair masks the lowest level it can, to keep the aggregates readers use most."""
    name = str(key[0]) if isinstance(key, tuple) else ""
    return 2 if "departement" in name else 1 if "epci" in name else 0


# The key parts that name a total of its row (a category `total`, `n_attributions`).
_TOTALS = frozenset({"total", "n_attributions"})


def _is_yearly(key: Hashable) -> bool:
    """Whether a cell is a yearly figure rather than a month's: the year is what the reports
    and their trends read, a month only details it; a month is masked before any year."""
    return not (isinstance(key, tuple) and str(key[0]).endswith("_mois"))


def _is_total(key: Hashable) -> bool:
    """Whether a cell is the total of its territory and year: the figure readers compare
    first (a trend, a territory against its département); a part is masked before it."""
    return isinstance(key, tuple) and any(part in _TOTALS for part in key[3:])


def _candidate(table: LinkedTable, cell: int, by_cell: dict[int, list[Relation]]) -> int | None:
    """The published non-zero cell whose masking costs least: of a relation of `cell`, else
    of a relation of the masked cells met on the way (breadth first). Least cost: the lowest
    territorial level (keep the aggregates), then a part before a total (the largest value
    of a row, which the next criterion would otherwise pick), then the fewest equations it
    would be alone in
    (each calls for another suppression), then the largest value (the widest interval for
    one cell masked). Measured on `small` against the other orders (docs/open-data.md)."""
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
            return min(
                published,
                key=lambda j: (
                    _is_yearly(table.cells[j].key),
                    _level(table.cells[j].key),
                    _is_total(table.cells[j].key),
                    _cascade(table, j, by_cell),
                    -table.cells[j].value,
                    j,
                ),
            )
        seen |= masked
        frontier = masked
    return None


# The protection of one component, by its digest: the keys of its cells masked at the end.
ProtectionCache = dict[str, list[str]]
# What a component's protection depends on besides its cells and relations: this algorithm.
_ALGORITHM = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _structure(table: LinkedTable, relations: Iterable[Relation]) -> list[list[int]]:
    """Every cell grouped by `relations`, masked or not: components that no relation crosses,
    so that the repair of one never changes another."""
    parent = list(range(len(table.cells)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for relation in relations:
        first = relation.terms[0][0]
        for other, _ in relation.terms[1:]:
            parent[find(other)] = find(first)
    groups: dict[int, list[int]] = {}
    for i in range(len(table.cells)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _digest(table: LinkedTable, cells: list[int], relations: list[Relation]) -> str:
    """Everything the component's repair depends on: its cells (key, value, threshold,
    masked), its relations (by cell key) and the algorithm."""
    name = {i: json.dumps(table.cells[i].key) for i in cells}
    digest = hashlib.sha256(_ALGORITHM.encode())
    for i in sorted(cells, key=name.__getitem__):
        c = table.cells[i]
        digest.update(f"{name[i]}|{c.value}|{c.seuil}|{c.masked}\n".encode())
    for line in sorted(
        json.dumps([relation.equal, sorted((name[i], coef) for i, coef in relation.terms)])
        for relation in relations
    ):
        digest.update(line.encode())
    return digest.hexdigest()


def protect(
    table: LinkedTable,
    cache: ProtectionCache | None = None,
    store: ProtectionCache | None = None,
) -> list[Hashable]:
    """Secondary suppression until no masked cell is exposed to the contract's attacker;
    returns the cells it masked.

    Each round masks one cell per exposed cell (none for an exposed cell whose relations this
    round already touched: one new mask often frees several), then audits only the cells
    whose interval can have changed (masking a published cell only widens the attacker's
    feasible set: a safe cell stays safe): the cells still exposed and the new ones. Every
    round masks at least one more cell or raises, so the repair ends without a cap on rounds
    (nationally it takes a few hundred, the last ones about a few cells each). A 0 is
    never masked (readers are told so: a masked cell is at least 1). The audit's attacker is
    the contract's: it does not know which masked cells are primary; the stronger one (which
    does) masked half again as many cells on `small` (docs/open-data.md).

    The relations of the deferred cells (`Cell.deferred`: France, the sum of every
    département) are left out of the repair, which would otherwise work on one component per
    year (nationally more than half an hour instead of seconds), and the deferred cells are
    settled after it (`_settle`).

    No relation crosses a component of `_structure` (they are per year), so a component's
    repair depends on nothing outside it: one found in `cache` (an earlier publication's, by
    digest) takes the masks it got then, and is neither audited nor repaired again: a new
    month re-protects its year only. `store` receives every component's masks.

    The groups of `_structure` by every relation (a year, with France's equations) are
    protected one by one (`_protect_part`): when two or more are large (a full refresh), each
    in a worker process of its own, so the repair's bookkeeping between rounds runs on every
    core too and not only its audits; one alone (a new month) has its large audits pooled."""
    components, jobs, added = _plan(table, cache)
    with ExitStack() as stack:
        pool = None
        if _WORKERS > 1 and sum(len(job.part.cells) >= _POOLED_PART for job in jobs) > 1:
            pool = _spawn_pool(stack)
        pending = []
        for job in sorted(jobs, key=lambda job: -len(job.part.cells)):
            if pool is not None and len(job.part.cells) >= _POOLED_PART:
                pending.append((job, pool.submit(_protect_part, job.part, job.check, job.settle)))
            else:  # in this process, whose audits may take their own workers
                done = _protect_part(job.part, job.check, job.settle, pooled=pool is None)
                _apply(table, job, done, added)
        for job, future in pending:
            _apply(table, job, future.result(), added)  # raises when it cannot protect
    if store is not None:
        for digest, cells, _ in components:
            store[digest] = [json.dumps(table.cells[i].key) for i in cells if table.cells[i].masked]
    return [table.cells[i].key for i in added]


def _plan(
    table: LinkedTable, cache: ProtectionCache | None
) -> tuple[list[tuple[str, list[int], bool]], list[_Job], list[int]]:
    """`protect`'s components by digest (with whether each settles deferred cells), the parts
    left to repair once `cache`'s masks are applied, and the cells those masks added."""
    deferred = {i for i, c in enumerate(table.cells) if c.deferred}
    inner = [r for r in table.relations if deferred.isdisjoint(i for i, _ in r.terms)]
    # Digests first, all on the cells as given: a group of deferred cells overlaps the
    # components of the repair, whose cached masks must not change its digest.
    groups = _structure(table, table.relations)
    components = [
        (_digest(table, cells, relations), cells, False)
        # without deferred cells, `inner` is every relation: the same groups
        for cells, relations in _grouped(table, inner, None if deferred else groups)
        if deferred.isdisjoint(cells)
    ]
    if deferred:
        components += [
            (_digest(table, cells, relations), cells, True)
            for cells, relations in _grouped(table, table.relations, groups)
            if not deferred.isdisjoint(cells)
        ]
    added: list[int] = []
    check: set[int] = set()
    unsettled: set[int] = set()  # a cell of each group of deferred cells to settle
    for digest, cells, settles in components:
        known = (cache or {}).get(digest)
        if known is None:
            if settles:
                unsettled.add(cells[0])
            else:
                check |= {i for i in cells if table.cells[i].masked}
            continue
        for key in known:
            i = table.index[_key(key)]
            if not table.cells[i].masked:
                table.cells[i].masked = True
                added.append(i)
    return components, _jobs(table, groups, check, unsettled), added


# A group of `_structure` this large is protected in a worker process of its own when two
# or more are (nationally a year, about 200,000 cells: a few minutes each).
_POOLED_PART = 5_000


@dataclass
class _Job:
    """One group of `_structure` (by every relation) to protect, as a table of its own: no
    relation crosses groups, so its repair and settlement depend on nothing else."""

    cells: list[int]  # table index of each of the part's cells, in order
    part: LinkedTable
    check: set[int]  # part indices: the masked cells of its components not taken from a cache
    settle: bool  # whether its deferred cells are to be settled


def _jobs(
    table: LinkedTable, groups: list[list[int]], check: set[int], unsettled: set[int]
) -> list[_Job]:
    """The groups holding a cell to check or a deferred cell to settle, each cut out of the
    table with its cells and relations in table order (so that every tie of the repair is
    broken as in the whole table)."""
    group_of: dict[int, int] = {}
    for g, cells in enumerate(groups):
        for i in cells:
            group_of[i] = g
    checked: dict[int, list[int]] = {}
    for i in check:
        checked.setdefault(group_of[i], []).append(i)
    settled = {group_of[i] for i in unsettled}
    wanted = checked.keys() | settled
    relations: dict[int, list[Relation]] = {g: [] for g in wanted}
    for relation in table.relations:
        g = group_of[relation.terms[0][0]]
        if g in relations:
            relations[g].append(relation)
    jobs = []
    for g in sorted(wanted):
        cells = sorted(groups[g])
        local = {i: k for k, i in enumerate(cells)}
        part = LinkedTable(
            cells=[table.cells[i] for i in cells],
            relations=[
                Relation(tuple((local[i], c) for i, c in r.terms), r.equal) for r in relations[g]
            ],
        )
        mine = {local[i] for i in checked.get(g, [])}
        jobs.append(_Job(cells, part, mine, g in settled))
    return jobs


def _protect_part(
    part: LinkedTable, check: set[int], settle: bool, pooled: bool = False
) -> list[int]:
    """The repair of one group (`_Job`), then the settlement of its deferred cells: the part
    indices masked, in order. `pooled`: the audits may take worker processes of their own
    (not in a worker already)."""
    deferred = {i for i, c in enumerate(part.cells) if c.deferred}
    inner = [r for r in part.relations if deferred.isdisjoint(i for i, _ in r.terms)]
    by_cell = _by_cell(inner)
    # Built once: `_settle` walks every relation, the deferred cells' too.
    full = _by_cell(part.relations) if settle else by_cell
    rank = {id(relation): k for k, relation in enumerate(part.relations)}
    added: list[int] = []
    with ExitStack() as stack:
        workers = _Workers(stack, pooled)
        _repair(part, by_cell, rank, check, added, workers)  # raises when it cannot protect
        if settle:
            _settle(part, list(range(len(part.cells))), by_cell, full, rank, added, workers)
    return added


def _apply(table: LinkedTable, job: _Job, done: list[int], added: list[int]) -> None:
    """The masks of a part's protection on the table (a worker protected a copy)."""
    for k in done:
        i = job.cells[k]
        table.cells[i].masked = True
        added.append(i)


def _grouped(
    table: LinkedTable, relations: list[Relation], groups: list[list[int]] | None = None
) -> list[tuple[list[int], list[Relation]]]:
    """The components of `_structure` by `relations` (`groups` when already known), each with
    its relations."""
    relations_of: dict[int, list[Relation]] = {}
    for relation in relations:
        relations_of.setdefault(relation.terms[0][0], []).append(relation)
    return [
        (cells, [r for i in cells for r in relations_of.get(i, [])])
        for cells in (groups if groups is not None else _structure(table, relations))
    ]


def _settle(
    table: LinkedTable,
    cells: list[int],
    by_cell: dict[int, list[Relation]],
    full: dict[int, list[Relation]],
    rank: dict[int, int],
    added: list[int],
    workers: _Workers,
) -> None:
    """Publish the deferred cells of `cells` (one group of `_structure`) where that exposes
    nothing; mask the others.

    Nationally a group is a year: every masked cell of it, 54,000, joined by France's
    equations, whose audit takes two minutes (2,100 LPs on the whole year). Most of it is
    local: a cell that moves by 1 with every masked cell of the deferred cells' relations
    (the held cells: départements, France) fixed at its value moves so whatever the deferred
    cells publish, so each component of the repair is audited first with those fixed
    (seconds); only the cells left and the held ones are audited on the whole group, with
    every deferred cell published at once. While that exposes something, each pinned cell
    has one deferred cell published beside it masked, then the group is audited again."""
    deferred = [i for i in cells if table.cells[i].deferred]
    # A 0 is never masked (its parts are 0s, all published).
    candidates = {i for i in deferred if not table.cells[i].masked and table.cells[i].value > 0}
    held = {j for i in deferred for r in full.get(i, []) for j, _ in r.terms}
    held = {j for j in held if table.cells[j].masked}
    programs = []
    for component_cells, relations in _components_around(table, by_cell, rank, held):
        program = _component(table, component_cells, relations, set(component_cells) - held)
        for k, i in enumerate(program.cells):
            if i in held:
                program.lower[k] = program.upper[k] = program.value[k]
        programs.append(program)
    pool = workers.pool_for(len(p.cells) for p in programs)
    loose = _audit_programs(programs, pool) | held

    def exposes() -> set[int]:
        """What the attacker pins with the deferred cells as they stand."""
        seeds = {i for i in held | loose if table.cells[i].masked}
        components = _components_around(table, full, rank, seeds)
        pool = workers.pool_for(len(c) for c, _ in components)
        return _audit_all(table, components, seeds, pool)

    while found := exposes():
        chosen: set[int] = set()
        # For each cell pinned, the least read deferred cell published beside it (a category
        # before a total, the smallest first) is masked; `_repair` masks the others' way for
        # a cell with none (the sum of a masked deferred cell's parts is pinned).
        for cell in found:
            near = {
                i
                for relation in full.get(cell, [])
                for i, _ in relation.terms
                if i in candidates and not table.cells[i].masked
            }
            if near:
                chosen.add(max(near, key=lambda i: _read_first(table, i)))
        if not chosen:
            before = len(added)
            _repair(table, full, rank, found, added, workers)
            loose |= set(added[before:])
            continue
        for i in chosen:
            table.cells[i].masked = True
            added.append(i)
        held |= chosen
        loose |= chosen


def _read_first(table: LinkedTable, i: int) -> tuple[bool, int, int]:
    """A deferred cell's rank, the first published first: a total, then the largest."""
    return not _is_total(table.cells[i].key), -table.cells[i].value, i


def _key(text: str) -> Hashable:
    """A cell key back from its JSON text (lists were tuples)."""
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else value


def _components_around(
    table: LinkedTable,
    by_cell: dict[int, list[Relation]],
    rank: dict[int, int],
    seeds: set[int],
) -> list[tuple[list[int], list[Relation]]]:
    """The components of `_components` that hold a cell of `seeds` (masked cells), in the
    same form: cells in index order, relations in table order."""
    every = table.cells
    seen: set[int] = set()
    out = []
    for seed in sorted(seeds):
        if seed in seen:
            continue
        seen.add(seed)
        cells, stack = [], [seed]
        relations: dict[int, Relation] = {}  # by rank
        while stack:
            i = stack.pop()
            cells.append(i)
            for relation in by_cell.get(i, ()):
                k = rank[id(relation)]
                if k in relations:  # walked from another of its cells: all of them seen
                    continue
                relations[k] = relation
                for j, _ in relation.terms:
                    if j not in seen and every[j].masked:
                        seen.add(j)
                        stack.append(j)
        out.append((sorted(cells), [relations[k] for k in sorted(relations)]))
    return out


def _repair(
    table: LinkedTable,
    by_cell: dict[int, list[Relation]],
    rank: dict[int, int],
    check: set[int],
    added: list[int],
    workers: _Workers,
) -> None:
    """The repair rounds of `protect`, from the masked cells to `check`. Each round audits
    the components around `check` only, found by walking the relations from it: nationally
    a repair takes a few hundred rounds, most of them about a handful of cells, and grouping
    all 622,000 cells each time cost more than the audit. `rank` orders the relations as the
    table lists them (so a component's program is the same whatever the walk)."""
    while True:
        components = _components_around(table, by_cell, rank, check)
        pool = workers.pool_for(len(cells) for cells, _ in components)
        found = _audit_all(table, components, check, pool)
        if not found:
            return
        check = _mask_round(table, by_cell, found, added)


# Worker processes of the audit: one per core this process may use (a national repair is
# about a quarter of an hour of LPs on one core).
_WORKERS = min(4, len(os.sched_getaffinity(0)))


def _mask_round(
    table: LinkedTable, by_cell: dict[int, list[Relation]], found: set[int], added: list[int]
) -> set[int]:
    """One round of masking for the exposed cells `found`; the cells to audit next."""
    newly: set[int] = set()
    stuck: set[int] = set()
    for cell in sorted(found):
        if any(j in newly for r in by_cell.get(cell, []) for j, _ in r.terms):
            continue
        chosen = _candidate(table, cell, by_cell)
        if chosen is None:
            stuck.add(cell)
            continue
        table.cells[chosen].masked = True
        newly.add(chosen)
    if not newly:
        raise RuntimeError(
            "secondary suppression cannot protect "
            + ", ".join(str(table.cells[i].key) for i in sorted(stuck))
            + ": every non-zero cell linked to it is masked"
        )
    added.extend(sorted(newly))
    return found | newly


# --- the territorial hierarchy ------------------------------------------------------------

# year -> commune code -> (EPCI code, département code), either may be None.
Hierarchy = dict[int, dict[str, tuple[str | None, str | None]]]
# year -> QPV code -> the codes of the communes it lies in (public composition).
QpvCommunes = dict[int, dict[str, list[str]]]


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
