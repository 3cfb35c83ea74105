"""alarm_rules: CloudWatch's evaluation on datapoints, without a database or rrdtool."""
import pytest

from services.metrics.alarm_rules import ALARM, INSUFFICIENT_DATA, OK, Rule, datapoints, evaluate


def rule(**overrides):
    values = dict(statistic="average", comparison="GreaterThanThreshold", threshold=50.0, period=10,
                  evaluation_periods=3, datapoints_to_alarm=2, missing_data="missing")
    values.update(overrides)
    return Rule(**values)


def test_samples_reduce_per_period_by_the_statistic():
    samples = [(95, 10.0), (100, 30.0), (105, 1.0), (110, None), (115, 7.0), (120, 9.0)]
    assert datapoints(samples, rule(statistic="average"), now=124) == [(100, 20.0), (110, 1.0), (120, 8.0)]
    assert datapoints(samples, rule(statistic="max"), now=120) == [(100, 30.0), (110, 1.0), (120, 9.0)]
    assert datapoints(samples, rule(statistic="min", evaluation_periods=2), now=129) == [(110, 1.0), (120, 7.0)]
    # A period with no sample (or only unknowns) is missing; samples outside the window count nothing.
    assert datapoints([(50, 99.0), (110, None)], rule(), now=120) == [(100, None), (110, None), (120, None)]


@pytest.mark.parametrize("values, state", [
    ([60, 10, 60], ALARM),        # 2 of 3 breach
    ([10, 10, 60], OK),           # 1 of 3
    ([60, 60, 60], ALARM),
    ([50, 50, 50], OK),           # GreaterThan: equal is not a breach
])
def test_n_of_m_datapoints_alarm(values, state):
    points = [(i, v) for i, v in enumerate(values)]
    verdict = evaluate(points, rule(), OK)
    assert verdict.state == state and verdict.value == values[-1]


def test_comparisons():
    point = [(0, 50.0)]
    one = dict(evaluation_periods=1, datapoints_to_alarm=1)
    assert evaluate(point, rule(comparison="GreaterThanOrEqualToThreshold", **one), OK).state == ALARM
    assert evaluate(point, rule(comparison="LessThanThreshold", **one), OK).state == OK
    assert evaluate(point, rule(comparison="LessThanOrEqualToThreshold", **one), OK).state == ALARM


@pytest.mark.parametrize("mode, all_missing, one_breach_two_missing", [
    ("missing", INSUFFICIENT_DATA, OK),   # judged on what is there; nothing there: no verdict
    ("ignore", "kept", OK),               # nothing there: the state stays
    ("breaching", ALARM, ALARM),          # missing counts as a breach
    ("notBreaching", OK, OK),             # missing counts as fine
])
def test_missing_data_modes(mode, all_missing, one_breach_two_missing):
    r = rule(missing_data=mode)
    empty = evaluate([(0, None), (1, None), (2, None)], r, ALARM)
    assert empty.state == (ALARM if all_missing == "kept" else all_missing)
    assert empty.value is None
    assert evaluate([(0, None), (1, 70.0), (2, None)], r, INSUFFICIENT_DATA).state == one_breach_two_missing
