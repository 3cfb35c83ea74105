"""An alarm's evaluation, CloudWatch's semantics, as pure functions (no database, no rrdtool).

The last M periods (evaluation_periods) before `now`, aligned to the period, each reduce their
samples to one datapoint by the statistic; a period without a sample is missing. A datapoint
breaches when `value <comparison> threshold`. Then, with N = datapoints_to_alarm:

    ALARM              when at least N of the M datapoints breach;
    OK                 otherwise, when there is at least one datapoint to judge;
    INSUFFICIENT_DATA  when every datapoint is missing and missing_data is `missing`.

missing_data says what a missing datapoint is: `missing` (left out: judged on the others, and
INSUFFICIENT_DATA when there are none), `ignore` (left out, and when there are none the alarm
keeps its state), `breaching` (counts as a breach), `notBreaching` (counts as fine)."""
import dataclasses
import operator

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT_DATA)
STATISTICS = {"average": lambda values: sum(values) / len(values), "min": min, "max": max}
COMPARISONS = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
MISSING_DATA = ("missing", "ignore", "breaching", "notBreaching")


@dataclasses.dataclass(frozen=True)
class Rule:
    statistic: str
    comparison: str
    threshold: float
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    missing_data: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    value: float | None  # the newest datapoint, None when it is missing


def datapoints(samples, rule, now):
    """[(period end, value or None)] oldest first, of the last M whole periods ending at or
    before `now` (unix seconds). `samples`: [(unix ts, value or None)]; a sample at ts belongs to
    the period (end - period, end]."""
    last_end = int(now) // rule.period * rule.period
    ends = [last_end - i * rule.period for i in range(rule.evaluation_periods - 1, -1, -1)]
    buckets = {end: [] for end in ends}
    for ts, value in samples:
        if value is None:
            continue
        end = -(-int(ts) // rule.period) * rule.period  # ceil to the period's end
        if end in buckets:
            buckets[end].append(value)
    reduce = STATISTICS[rule.statistic]
    return [(end, reduce(buckets[end]) if buckets[end] else None) for end in ends]


def evaluate(points, rule, current_state):
    """The Verdict for `points` (datapoints() of the M periods)."""
    breaches = COMPARISONS[rule.comparison]
    present = [value for _end, value in points if value is not None]
    missing = len(points) - len(present)
    breaching = sum(1 for value in present if breaches(value, rule.threshold))
    if rule.missing_data == "breaching":
        breaching += missing
    newest = points[-1][1] if points else None
    if not present and rule.missing_data in ("missing", "ignore"):
        if rule.missing_data == "ignore":
            return Verdict(current_state, "no datapoints; missing data ignored: state kept", None)
        return Verdict(INSUFFICIENT_DATA, f"no datapoints in the last {len(points)} periods", None)
    summary = (f"{breaching} of the last {len(points)} datapoints breach the threshold "
               f"({rule.statistic} {rule.comparison} {rule.threshold:g}; {missing} missing, "
               f"treated as {rule.missing_data})")
    state = ALARM if breaching >= rule.datapoints_to_alarm else OK
    return Verdict(state, summary, newest if newest is not None else (present[-1] if present else None))
