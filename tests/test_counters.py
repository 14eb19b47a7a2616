"""The array versions of the counter series (global counters of long traces) give exactly what
the pure-Python versions give (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_trace.layout import counters

times = st.integers(min_value=0, max_value=60)


@st.composite
def intervals(draw: st.DrawFn) -> list[tuple[int, int]]:
    out = []
    for start in draw(st.lists(times, max_size=60)):
        out.append((start, start + draw(st.integers(min_value=1, max_value=30))))
    return out


@given(intervals())
@settings(max_examples=300, deadline=None)
def test_in_flight_arrays_equal_in_flight(items: list[tuple[int, int]]) -> None:
    ts, values = counters.in_flight(items)
    ats, avalues = counters.in_flight_arrays([a for a, _ in items], [b for _, b in items])
    assert list(ats) == list(ts) and list(avalues) == list(values)


@given(st.lists(st.tuples(times, st.one_of(st.integers(0, 3), st.integers(2**62, 2**62 + 1))), max_size=60),
       st.booleans())
@settings(max_examples=300, deadline=None)
def test_sampled_arrays_equal_sampled(samples: list[tuple[int, int]], as_float: bool) -> None:
    if as_float:
        samples = [(t, v / 4.0) for t, v in samples]
    ts, values = counters.sampled(samples)
    ats, avalues = counters.sampled_arrays([t for t, _ in samples], [v for _, v in samples])
    assert list(ats) == list(ts) and list(avalues) == list(values)
    assert [type(v) for v in avalues] == [type(v) for v in values]


def test_sampled_arrays_keep_a_mix_of_ints_and_floats_and_ints_beyond_int64() -> None:
    for samples in ([(0, 1), (1, 2.5), (2, 2.5)], [(0, 2**70), (1, 3)]):
        assert counters.sampled_arrays([t for t, _ in samples], [v for _, v in samples]) == counters.sampled(samples)


@given(st.lists(st.tuples(times, st.integers(1, 30), st.integers(0, 10**6)), max_size=60))
@settings(max_examples=300, deadline=None)
def test_summed_rates_arrays_equal_summed_rates(items: list[tuple[int, int, int]]) -> None:
    windows = [(s, s + w, a) for s, w, a in items]
    ts, values = counters.summed_rates(windows)
    ats, avalues = counters.summed_rates_arrays([w[0] for w in windows], [w[1] for w in windows],
                                                [w[2] for w in windows])
    assert list(ats) == list(ts) and list(avalues) == list(values)
