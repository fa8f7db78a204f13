"""Find the integer setting (depth, width, kernel size, ...) whose model best matches a parameter budget.

A count need not grow with the value: a CNN's depth adds pooled stages that shrink its flattened head (on
Fashion-MNIST depth 1-4 give 804,586 / 421,738 / 241,770 / 422,506), and a kernel with ``padding=valid`` shrinks
the feature map it feeds. So the search is exhaustive wherever it can be:

1. The first ``SCAN`` values from ``--min`` are counted one by one. A value the builder refuses (too many
   pooled stages for the image, a kernel larger than it) ends the feasible range; if the range ends inside the
   scan, the answer is the true optimum over the whole feasible range.
2. Otherwise the search doubles the value until the count reaches the target (or the range ends), then:
   a feasible range that ended is scanned whole (up to ``MAX_SCAN`` values); a count that grew over every value
   counted so far is bisected between the last two doublings, and the answer says that it assumed the count
   keeps growing, which holds for depth and width of MLPs, embedding sizes and kernels with ``padding=same``.

Every candidate is a real model instantiated on the meta device, so the counts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbench.analysis.params import build_meta, count_parameters
from dlbench.errors import InvalidSettingError
from dlbench.models import get_model_spec

MAX_VALUE = 1 << 20
SCAN = 16  # values counted one by one before any assumption is made
MAX_SCAN = 4096  # the largest feasible range scanned whole


@dataclass(frozen=True)
class Candidate:
    value: int
    params: int
    rel_diff: float  # (params - target) / target, signed


@dataclass(frozen=True)
class Solution:
    setting: str
    value: int
    params: int
    target: int
    rel_diff: float
    below: list[Candidate]
    above: list[Candidate]
    evaluations: int
    searched: tuple[int, int] = (0, 0)  # the values the answer is the optimum over (inclusive)
    exhaustive: bool = True  # False: above the scan, bisection assumed the count grows with the value
    ties: list[int] = field(default_factory=list)  # other values exactly as close to the target

    def describe(self) -> str:
        """One line on what was searched: the range, and how."""
        lo, hi = self.searched
        if self.exhaustive:
            how = f"every {self.setting} from {lo} to {hi} counted"
        else:
            scanned = min(hi, lo + SCAN - 1)
            how = f"{self.setting} {lo}-{scanned} counted one by one"
            if hi > scanned:
                how += f", then bisection up to {hi}"
            how += "; larger values assumed to add parameters (the count grew with every value counted)"
        tie = f"; {', '.join(map(str, self.ties))} tie with it" if self.ties else ""
        return how + tie


class _Counter:
    """Parameter counts of one setting's values, memoised; None for a value the builder refuses."""

    def __init__(self, spec, setting, base, input_shape, num_classes, bias):
        self.spec, self.setting, self.base = spec, setting, base
        self.shape, self.classes, self.bias = input_shape, num_classes, bias
        self.memo: dict[int, int | None] = {}

    def __call__(self, v: int) -> int | None:
        if v not in self.memo:
            try:
                model = build_meta(self.spec, self.shape, self.classes, {**self.base, self.setting: v})
                self.memo[v] = count_parameters(model, bias=self.bias)[0]
            except InvalidSettingError:
                self.memo[v] = None
        return self.memo[v]

    def grows(self) -> bool:
        """Whether every feasible count so far is at least the one of the next smaller value counted."""
        counts = [c for _, c in sorted(self.memo.items()) if c is not None]
        return all(a <= b for a, b in zip(counts, counts[1:], strict=False))


def solve(
    model_name: str,
    setting: str,
    target: int,
    input_shape,
    num_classes: int,
    settings=None,
    *,
    bias: bool = True,
    minimum: int = 1,
    neighbours: int = 2,
) -> Solution:
    """The value of integer ``setting`` whose model's parameter count is closest to ``target``.

    Ties go to the smallest value (the others are listed in ``Solution.ties``). Raises InvalidSettingError for a
    setting that is not an integer, a non-positive target, or no feasible value at all.
    """
    spec = get_model_spec(model_name)
    base = spec.resolve(settings)
    _check(model_name, setting, target, base)
    count = _Counter(spec, setting, base, input_shape, num_classes, bias)
    lo, hi, exhaustive = _search_range(count, setting, target, minimum)
    if exhaustive:
        values = [v for v in range(lo, hi + 1) if count(v) is not None]
    else:
        scanned = min(hi, lo + SCAN - 1)
        values = list(range(lo, scanned + 1))
        if hi > scanned:
            values += _bisect(count, target, max(scanned, hi // 2), hi)
    distance = {v: abs(count(v) - target) for v in values}
    best_distance = min(distance.values())
    tied = sorted(v for v, d in distance.items() if d == best_distance)
    best = tied[0]

    def cand(v: int) -> Candidate:
        return Candidate(v, count(v), (count(v) - target) / target)

    near = range(max(minimum, best - neighbours), best + neighbours + 1)
    feasible = [v for v in near if v != best and count(v) is not None]
    chosen = cand(best)
    return Solution(
        setting,
        best,
        chosen.params,
        target,
        chosen.rel_diff,
        [cand(v) for v in feasible if v < best],
        [cand(v) for v in feasible if v > best],
        len(count.memo),
        searched=(lo, hi),
        exhaustive=exhaustive,
        ties=tied[1:],
    )


def _check(model_name: str, setting: str, target: int, base: dict) -> None:
    if setting not in base:
        raise InvalidSettingError(
            f"model '{model_name}' has no setting '{setting}'; integer settings: {', '.join(_ints(base))}"
        )
    if type(base[setting]) is not int:
        raise InvalidSettingError(
            f"can only solve an integer setting; '{setting}' is not one. Choose from: {', '.join(_ints(base))}"
        )
    if target <= 0:
        raise InvalidSettingError(f"the target must be a positive parameter count, got {target}")


def _search_range(count: _Counter, setting: str, target: int, minimum: int) -> tuple[int, int, bool]:
    """(first, last, exhaustive): the feasible values the answer is chosen from, and whether all are counted."""
    first = next((v for v in range(minimum, minimum + SCAN) if count(v) is not None), None)
    if first is None:
        raise InvalidSettingError(
            f"no {setting} from {minimum} to {minimum + SCAN - 1} gives a model this input can use; "
            "check the other settings or --min"
        )
    v = first
    while v + 1 < first + SCAN:  # the scan: one by one
        if count(v + 1) is None:
            return first, v, True
        v += 1
    while count(v) < target:  # doubling until the count passes the target or the range ends
        nxt = 2 * v
        if nxt > MAX_VALUE:
            raise InvalidSettingError(
                f"no {setting} up to {MAX_VALUE} reaches {target:,} parameters; is the target right?"
            )
        if count(nxt) is None:
            return first, _check_scannable(setting, first, _last_feasible(count, v, nxt)), True
        v = nxt
    if count.grows():
        return first, v, False
    return first, _check_scannable(setting, first, v), True  # the count went down somewhere: count all


def _check_scannable(setting: str, first: int, last: int) -> int:
    if last - first + 1 > MAX_SCAN:
        raise InvalidSettingError(
            f"{setting} is feasible from {first} to {last}, too many values to count one by one, and the "
            "count does not simply grow; raise --min to narrow the range"
        )
    return last


def _last_feasible(count: _Counter, ok: int, bad: int) -> int:
    """The largest feasible value in [ok, bad), assuming feasibility ends once (a bisection)."""
    while bad - ok > 1:
        mid = (ok + bad) // 2
        ok, bad = (mid, bad) if count(mid) is not None else (ok, mid)
    return ok


def _bisect(count: _Counter, target: int, lo: int, hi: int) -> list[int]:
    """The two values around the crossing of a growing count (invariant: count(lo) < target <= count(hi))."""
    if count(lo) >= target:
        return [lo]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    return [lo, hi]


def _ints(settings: dict) -> list[str]:
    return sorted(k for k, v in settings.items() if type(v) is int)
