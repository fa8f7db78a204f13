"""Find the integer setting (depth, width, kernel size, ...) whose model best matches a parameter budget.

Parameter counts grow with these settings, so a doubling search brackets the target and a binary search
finds the crossing: about 2*log2(value) meta instantiations instead of one per candidate. The answer is
the better of the two values around the crossing, and exact, since every candidate is a real model.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbench.analysis.params import build_meta, count_parameters
from dlbench.errors import InvalidSettingError
from dlbench.models import get_model_spec

MAX_VALUE = 1 << 20


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
    spec = get_model_spec(model_name)
    base = spec.resolve(settings)
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
    memo: dict[int, int] = {}

    def params(v: int) -> int:
        if v not in memo:
            model = build_meta(spec, input_shape, num_classes, {**base, setting: v})
            memo[v] = count_parameters(model, bias=bias)[0]
        return memo[v]

    lo = minimum
    if params(lo) >= target:
        best = lo
    else:
        hi = max(lo + 1, 2 * lo)
        while params(hi) < target:  # double until the count passes the target
            lo, hi = hi, hi * 2
            if hi > MAX_VALUE:
                raise InvalidSettingError(
                    f"no {setting} up to {MAX_VALUE} reaches {target:,} parameters; is the target right?"
                )
        while hi - lo > 1:  # invariant: params(lo) < target <= params(hi)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if params(mid) < target else (lo, mid)
        best = min((lo, hi), key=lambda v: (abs(params(v) - target), v))

    def cand(v: int) -> Candidate:
        return Candidate(v, params(v), (params(v) - target) / target)

    below = [cand(v) for v in range(max(minimum, best - neighbours), best)]
    above = [cand(v) for v in range(best + 1, best + neighbours + 1)]
    chosen = cand(best)
    return Solution(setting, best, chosen.params, target, chosen.rel_diff, below, above, len(memo))


def _ints(settings: dict) -> list[str]:
    return sorted(k for k, v in settings.items() if type(v) is int)
