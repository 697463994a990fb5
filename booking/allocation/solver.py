"""The allocator: an exact, lexicographic optimisation of a round's weekly slots (HiGHS).

Why HiGHS (through `highspy`) and not OR-Tools CP-SAT: the model is a time-indexed set
packing — one binary per (section, premises, weekday, start) and, per space and weekday, a
clique row "at most one of the slots that cover this instant". A slot covers its time and its
premises' buffer after it ([start, end + buffer), `Candidate.until`), which is exactly the
booking rules' conflict (model.blocks), also across premises sharing a space with different
buffers; a span past 24:00 covers the start of the next day's line too. The conflict graph
stays an interval graph, so the cliques are still those at the starts, they have the
consecutive-ones property, the LP relaxation is tight and a MIP solver closes most
rounds at the root node and *proves* its bound, which the benchmark reports as the gap.
HiGHS's branch-and-bound is serial, so one thread gives the same answer on every run
(CP-SAT's strength is its parallel portfolio, which we would have to switch off on this
2-core machine to stay deterministic). The wheel is small (numpy only), MIT-licensed,
typed (`py.typed`), and well kept (the solver behind SciPy's `milp`).

The objective is lexicographic, solved stage by stage, each stage's optimum fixed as a
constraint before the next (weights large enough to dominate would need huge
coefficients that break the solver's tolerances):

for each tier, highest first, on a model holding only that tier and the ones above it
(so a lower tier can never change what a higher tier's stages see):
  1. maximise the tier's allocated minutes (a lower tier never displaces a higher one);
  2. maximise its preference points: minutes × (3 for a primary time + 3 for the first-
     choice premises, 2 for the second, 1 for the rest) — any primary time beats any
     secondary one, and within each the earlier-ranked premises wins;
  3. fairness: maximise the lowest share of requested hours among the tier's
     organisations (max-min: nobody is left with nothing while another is topped up),
  4. then the sum of the organisations' shares (an hour counts more for a club that
     asked for little than for one that asked for a lot; it settles what max-min leaves
     open, which is most of a congested round where the lowest share is 0).
How a finished tier is held while the lower ones are solved (`hold`):
- "allocations" (the default): its very slots stay put, and each lower tier is solved alone
  on the time the tiers above left free. Removing every lower-tier application changes
  nothing above, not even a slot. Each tier's model is small (the Mikkeli-size round takes
  ~3 s of CPU); the price is that a lower tier cannot ask a higher one to move to an
  equally good time to make room.
- "values": its four values are held as constraints on one growing model, so lower tiers
  may rearrange a higher tier's slots into an equally good allocation. The proposal is
  then the exact lexicographic optimum of (tier 1's four values, tier 2's, …), which no
  other allocation, first-come or any, beats; but the held rows are dense and the
  Mikkeli-size round takes minutes, so it is for smaller rounds and for the tests.
In both, no lower tier ever costs a higher one anything, and the highest tier's values
are the same.

Every stage is solved to within `rel_gap` of its proven bound (0.01 % by default; integer
stages also stop within one point) unless the time budget runs out; the stages report
value, bound and gap. With `rel_gap=0` every stage is exact and the guarantees above are
exact; with a gap they hold up to it. Without a
time-limit stop the result is a function of the input alone (sections are put in one
canonical order first, and the solver runs on one thread with a fixed seed).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import highspy
import numpy as np

from booking.allocation import explain
from booking.allocation.candidates import Candidate, all_candidates, ordered
from booking.allocation.model import DAY_MINUTES, Premises, Proposal, Section, StageReport

DEFAULT_STEP_MINUTES = 15
DEFAULT_TIME_LIMIT_SECONDS = 60.0
# Each stage stops once its value is proven within this share of the best possible (0.01 %;
# the benchmark's bar is 1 %). Integer stages also stop within one point, which on small
# rounds is exact; 0 asks for exact optima everywhere (the property tests do).
DEFAULT_REL_GAP = 1e-4
# The max-min fairness stage's branch-and-bound explores at most this many nodes. Its LP
# bound is weak: on the demo's round of 167 sections HiGHS found the optimum (0.625) within
# 200 nodes and then spent 140 s of CPU proving it; with this bound the stage takes about 8 s
# and reports what is left unproven (status and gap in `stages`). A bound on work rather
# than time keeps the proposal the same on a loaded machine. Hours and preferences, the
# stages that keep tiers in order, stay exact.
MAX_MIN_NODES = 500
# How a finished tier is held while lower ones are solved: "values" keeps its four values
# (lower tiers may rearrange it into an equally good allocation: the exact lexicographic
# optimum), "allocations" keeps its very slots (each tier is solved alone on the time the
# tiers above left free: much smaller models, but lower tiers get no rearrangement above).
HOLDS = ("values", "allocations")
DEFAULT_HOLD = "allocations"
INF = highspy.kHighsInf
_NO_LIMIT = highspy.kHighsIInf


@dataclass
class _Rows:
    """Constraint rows in compressed sparse row form."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(self, cols: Iterable[int], coefs: Iterable[float], lower: float, upper: float) -> None:
        self.starts.append(len(self.index))
        self.index.extend(cols)
        self.value.extend(coefs)
        self.lower.append(lower)
        self.upper.append(upper)

    def into(self, h: highspy.Highs) -> None:
        if not self.lower:
            return
        h.addRows(
            len(self.lower),
            np.array(self.lower, dtype=np.float64),
            np.array(self.upper, dtype=np.float64),
            len(self.index),
            np.array(self.starts, dtype=np.int32),
            np.array(self.index, dtype=np.int32),
            np.array(self.value, dtype=np.float64),
        )


@dataclass(frozen=True)
class Solved:
    """The solver's own view: sections in canonical order, all candidates, those chosen."""

    sections: list[Section]
    candidates: list[Candidate]
    chosen: list[Candidate]
    stages: list[StageReport]


def solve(
    sections: Iterable[Section],
    premises: Mapping[str, Premises],
    *,
    step: int = DEFAULT_STEP_MINUTES,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
    rel_gap: float = DEFAULT_REL_GAP,
    hold: str = DEFAULT_HOLD,
) -> Solved:
    secs = ordered(sections)
    candidates = all_candidates(secs, premises, step)
    run = _Lexicographic(secs, candidates, time.monotonic() + time_limit, rel_gap, hold)
    chosen = run.run()
    return Solved(secs, candidates, chosen, run.stages)


def propose(
    sections: Iterable[Section],
    premises: Mapping[str, Premises],
    *,
    step: int = DEFAULT_STEP_MINUTES,
    time_limit: float = DEFAULT_TIME_LIMIT_SECONDS,
    rel_gap: float = DEFAULT_REL_GAP,
    hold: str = DEFAULT_HOLD,
) -> Proposal:
    """The round's proposal: allocations, unallocated sections with reasons, metrics."""
    solved = solve(sections, premises, step=step, time_limit=time_limit, rel_gap=rel_gap, hold=hold)
    return proposal_of(solved)


def proposal_of(solved: Solved) -> Proposal:
    allocations = tuple(
        sorted(
            (c.allocation() for c in solved.chosen),
            key=lambda a: (a.premises_id, a.weekday, a.start, a.application_id, a.section),
        )
    )
    figures = explain.metrics(solved.sections, solved.chosen)
    figures["solver"] = {
        "name": "HiGHS",
        "version": _highs().version(),
        "proven_optimal": all(s.status == "Optimal" for s in solved.stages),
        # None: a stage stopped (time limit) without a proven bound; JSON has no Infinity.
        "largest_gap": _finite(max((s.gap for s in solved.stages), default=0.0)),
    }
    unallocated = explain.unallocated(solved.sections, solved.candidates, solved.chosen)
    return Proposal(allocations, tuple(unallocated), figures, tuple(solved.stages))


def _finite(gap: float) -> float | None:
    return gap if math.isfinite(gap) else None


@dataclass(frozen=True)
class _Achieved:
    """What a finished tier got, held as constraints while the lower tiers are solved."""

    tier: int
    minutes: float
    points: float
    lowest_share: float | None
    sum_of_shares: float | None


class _Tier:
    """A tier's columns in a model and its objectives."""

    def __init__(self, tier: int, active: list[Candidate], sections: list[Section]):
        self.cols = [i for i, c in enumerate(active) if c.section.tier == tier]
        self.minutes = {i: float(active[i].section.duration) for i in self.cols}
        self.points = {i: float(active[i].points) for i in self.cols}
        self.requested: dict[str, int] = defaultdict(int)
        for section in sections:
            if section.tier == tier:
                self.requested[section.organisation_id] += section.requested_minutes
        self.by_org: dict[str, list[int]] = defaultdict(list)
        for i in self.cols:
            self.by_org[active[i].section.organisation_id].append(i)
        self.shares = {
            i: self.minutes[i] / self.requested[active[i].section.organisation_id]
            for i in self.cols
        }

    @property
    def fairness_applies(self) -> bool:
        return len(self.requested) > 1

    def share_rows(self, lowest: float, z: int | None) -> _Rows:
        """Per organisation: granted minutes ≥ lowest × requested (or ≥ z × requested)."""
        rows = _Rows()
        for org in sorted(self.requested):
            cols = self.by_org.get(org, [])
            coefs = [self.minutes[i] for i in cols]
            if z is None:
                rows.add(cols, coefs, lowest * self.requested[org] - _SLACK, INF)
            else:
                rows.add([*cols, z], [*coefs, -float(self.requested[org])], 0.0, INF)
        return rows


# Continuous stage values are held up to this much below what was reached, so that the
# solver's tolerances never make a held value infeasible.
_SLACK = 1e-6


class _Lexicographic:
    def __init__(
        self,
        sections: list[Section],
        candidates: list[Candidate],
        deadline: float,
        rel_gap: float,
        hold: str,
    ):
        if hold not in HOLDS:
            raise ValueError(f"hold is one of {', '.join(HOLDS)}")
        self.hold = hold
        self.rel_gap = rel_gap
        self.sections = sections
        self.candidates = candidates
        self.deadline = deadline
        self.stages: list[StageReport] = []
        self.achieved: list[_Achieved] = []
        self.solution: list[float] = []
        self.binaries = 0  # the candidates in the model being solved

    def run(self) -> list[Candidate]:
        if self.hold == "allocations":
            return self._tier_by_tier()
        for tier in sorted({s.tier for s in self.sections}):
            active = [c for c in self.candidates if c.section.tier <= tier]
            if any(c.section.tier == tier for c in active):
                self._tier(tier, active)
        return [c for c, v in zip(self.candidates, self.solution, strict=False) if v > 0.5]

    def _tier_by_tier(self) -> list[Candidate]:
        """Each tier alone, on what the tiers above left free; their slots stay put."""
        fixed: list[Candidate] = []
        # Per space and day, the fixed slots that reach into it (a buffer past midnight
        # reaches into the next day).
        taken: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
        for tier in sorted({s.tier for s in self.sections}):
            own = [
                c
                for c in self.candidates
                if c.section.tier == tier
                and not any(
                    o.overlaps(c) for sp in c.spaces for day in _days(c) for o in taken[(sp, day)]
                )
            ]
            if not own:
                continue
            self.solution = []
            self._tier(tier, own)
            for c, v in zip(own, self.solution, strict=False):
                if v > 0.5:
                    fixed.append(c)
                    for space in c.spaces:
                        for day in _days(c):
                            taken[(space, day)].append(c)
        return fixed

    def _model(self, active: list[Candidate]) -> highspy.Highs:
        """Tiers up to this one, with what each higher tier achieved held."""
        n = self.binaries = len(active)
        h = _highs()
        empty_i, empty_f = np.zeros(0, dtype=np.int32), np.zeros(0)
        h.addCols(n, np.zeros(n), np.zeros(n), np.ones(n), 0, empty_i, empty_i, empty_f)
        h.changeColsIntegrality(
            n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger, np.uint8)
        )
        _structure(self.sections, active).into(h)
        for done in self.achieved if self.hold == "values" else ():
            held = _Tier(done.tier, active, self.sections)
            _at_least(h, held.minutes, done.minutes - 0.5)
            _at_least(h, held.points, done.points - 0.5)
            if done.lowest_share is not None:
                held.share_rows(done.lowest_share, None).into(h)
            if done.sum_of_shares is not None:
                _at_least(h, held.shares, done.sum_of_shares - _SLACK)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        return h

    def _tier(self, tier: int, active: list[Candidate]) -> None:
        # `active` is a prefix of the candidates: sections are ordered by tier first.
        h = self._model(active)
        mine = _Tier(tier, active, self.sections)
        warm = self.solution + [0.0] * (len(active) - len(self.solution))
        minutes = self._stage(h, tier, "minutes", mine.minutes, warm, integral=True)
        if minutes < 0.5:  # nothing of this tier fits at all
            self.solution = warm
            return
        _at_least(h, mine.minutes, minutes - 0.5)
        points = self._stage(h, tier, "preference_points", mine.points, self.solution, True)
        lowest = total = None
        if mine.fairness_applies:
            _at_least(h, mine.points, points - 0.5)
            lowest, total = self._fairness(h, tier, mine)
        self.achieved.append(_Achieved(tier, minutes, points, lowest, total))

    def _fairness(self, h: highspy.Highs, tier: int, mine: _Tier) -> tuple[float, float]:
        z = h.getNumCol()
        h.addCol(0.0, 0.0, 1.0, 0, np.zeros(0, dtype=np.int32), np.zeros(0))
        mine.share_rows(0.0, z).into(h)
        granted: dict[str, float] = defaultdict(float)
        for org, cols in mine.by_org.items():
            granted[org] = sum(mine.minutes[i] for i in cols if self.solution[i] > 0.5)
        now = min(granted[o] / mine.requested[o] for o in mine.requested)
        lowest = self._stage(h, tier, "lowest_share", {z: 1.0}, [*self.solution, now], False)
        h.changeColBounds(z, max(0.0, lowest - _SLACK), 1.0)
        total = self._stage(h, tier, "sum_of_shares", mine.shares, self.solution, False)
        self.solution = self.solution[:z]
        return lowest, total

    def _stage(
        self,
        h: highspy.Highs,
        tier: int,
        name: str,
        objective: Mapping[int, float],
        warm: list[float],
        integral: bool,
    ) -> float:
        n = h.getNumCol()
        costs = np.zeros(n)
        for i, coef in objective.items():
            costs[i] = coef
        h.changeColsCost(n, np.arange(n, dtype=np.int32), costs)
        h.setOptionValue("mip_abs_gap", 0.99 if integral else 1e-7)
        h.setOptionValue("mip_rel_gap", self.rel_gap)
        h.setOptionValue("time_limit", max(0.1, self.deadline - time.monotonic()))
        h.setOptionValue("mip_max_nodes", MAX_MIN_NODES if name == "lowest_share" else _NO_LIMIT)
        warm = warm + [0.0] * (n - len(warm))
        h.setSolution(n, np.arange(n, dtype=np.int32), np.array(warm[:n]))
        began = time.process_time()
        h.run()
        values = list(h.getSolution().col_value)
        if _disowned(h, costs, values):
            # HiGHS 1.16 may accept the start as optimal in presolve's reduced space and then
            # hand back the start itself, not its postsolved image: its objective says the
            # optimum, its columns do not. Solving again without the start is exact.
            h.clearSolver()
            h.run()
            values = list(h.getSolution().col_value)
        spent = time.process_time() - began
        status = h.modelStatusToString(h.getModelStatus())
        info = h.getInfo()
        bound = float(info.mip_dual_bound)
        if len(values) != n or info.primal_solution_status != 2:  # no feasible point found
            values, gap = warm[:n], 1.0
        else:
            values = [round(v) if i < self.binaries else v for i, v in enumerate(values)]
            gap = float(info.mip_gap)
        value = sum(objective[i] * values[i] for i in objective)
        self.solution = values
        self.stages.append(StageReport(tier, name, value, bound, gap, status, spent))
        return value


def _disowned(h: highspy.Highs, costs: np.ndarray, values: list[float]) -> bool:
    """Whether the solution HiGHS hands back is not the one whose objective it reports."""
    info = h.getInfo()
    if info.primal_solution_status != 2 or len(values) != len(costs):
        return False
    reported = float(info.objective_function_value)
    return abs(float(costs @ np.array(values)) - reported) > 1e-6 * max(1.0, abs(reported))


def _highs() -> highspy.Highs:
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    return h


def _at_least(h: highspy.Highs, objective: Mapping[int, float], lower: float) -> None:
    cols = sorted(objective)
    h.addRow(
        lower,
        INF,
        len(cols),
        np.array(cols, dtype=np.int32),
        np.array([objective[i] for i in cols]),
    )


def _structure(sections: list[Section], active: list[Candidate]) -> _Rows:
    """Slots per week, one a day, and one holder per space at any instant."""
    rows = _Rows()
    by_section: dict[int, list[int]] = defaultdict(list)
    by_day: dict[tuple[int, int], list[int]] = defaultdict(list)
    # Per space and day, the spans on that day's line: each candidate's [start, until) on its
    # own day, and the part of it past 24:00 on the next day's, shifted back a day.
    by_space_day: dict[tuple[str, int], list[tuple[int, int, int]]] = defaultdict(list)
    for i, c in enumerate(active):
        by_section[c.section_index].append(i)
        by_day[(c.section_index, c.weekday)].append(i)
        for space in c.spaces:
            by_space_day[(space, c.weekday)].append((c.start, c.until, i))
            if c.until > DAY_MINUTES:
                by_space_day[(space, (c.weekday + 1) % 7)].append(
                    (c.start - DAY_MINUTES, c.until - DAY_MINUTES, i)
                )
    for index, cols in sorted(by_section.items()):
        limit = sections[index].slots_per_week
        if limit < len({active[i].weekday for i in cols}):
            rows.add(cols, [1.0] * len(cols), -INF, float(limit))
    for _, cols in sorted(by_day.items()):
        if len(cols) > 1:
            rows.add(cols, [1.0] * len(cols), -INF, 1.0)
    for _, spans in sorted(by_space_day.items()):
        for clique in _cliques(spans):
            rows.add(clique, [1.0] * len(clique), -INF, 1.0)
    return rows


def _days(c: Candidate) -> tuple[int, ...]:
    """The days whose line `c` reaches: its own, and the next when its buffer runs past 24:00."""
    return (c.weekday, (c.weekday + 1) % 7) if c.until > DAY_MINUTES else (c.weekday,)


def _cliques(intervals: list[tuple[int, int, int]]) -> list[list[int]]:
    """The maximal sets of intervals that share an instant (each begins at some start).

    Only instants of the day itself count: a set sharing one before 0:00 is made of the
    previous day's spans alone, and that day's line has it already."""
    points = sorted({start for start, _, _ in intervals if start >= 0})
    sets = [sorted(i for s, e, i in intervals if s <= p < e) for p in points]
    result = []
    for k, members in enumerate(sets):
        if len(members) < 2:
            continue
        if k + 1 < len(sets) and set(members) <= set(sets[k + 1]):
            continue  # nothing ended before the next start: that clique holds this one
        result.append(members)
    return result
