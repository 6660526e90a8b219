"""The calculator: arithmetic and math functions only, every intermediate result bounded, never eval."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_agent.agent.calculator import CalculatorError, calculate, calculate_text
from smart_agent.agent.workers import ToolWorkers, WorkerError


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2+3*4", 14),
        ("(2+3)*4", 20),
        ("2**10", 1024),
        ("2^10", 1024),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("sqrt(16)", 4.0),
        ("round(pi, 2)", 3.14),
        ("max(1, 5, 3)", 5),
        ("factorial(5)", 120),
        ("1e3", 1000.0),
    ],
)
def test_arithmetic_when_valid_then_value(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "phrase"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("(1).__class__", "not allowed"),
        ("'a' * 3", "not allowed"),
        ("[1, 2]", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("9 ** 9999", "result too large"),
        ("factorial(100000)", "factorial argument larger than 1000"),
        ("1/0", "division by zero"),
        ("sqrt(-1)", "math domain error"),
        ("2 +", "not an arithmetic expression"),
        ("1" * 501, "longer than 500"),
    ],
)
def test_expression_when_unsafe_or_invalid_then_calculator_error(expression: str, phrase: str) -> None:
    with pytest.raises(CalculatorError, match=phrase):
        calculate(expression)


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_sum_and_product_when_integers_then_exact(a: int, b: int) -> None:
    assert calculate(f"{a} + ({b})") == a + b
    assert calculate(f"{a} * ({b})") == a * b


@given(st.text(max_size=40))
def test_any_text_when_calculated_then_number_or_calculator_error(text: str) -> None:
    try:
        result = calculate(text)
    except CalculatorError:
        return
    assert isinstance(result, int | float)


HOSTILE = [
    "round(1, -1000000000)",
    "round(1, -6000000)",
    "((9**999)**999)**999",
    "factorial(1000)**1000",
    "9**999**999",
    "*".join(["2**1000"] * 20),
    "factorial(1000)*factorial(1000)*factorial(1000)",
    "gcd(factorial(1000)**20, 3)",
    "floor(1e308)**200",
    "-" * 400 + "1",
    "(" * 60 + "-" * 60 + "1" + ")" * 60,
]


@pytest.mark.timing
@pytest.mark.parametrize("expression", HOSTILE)
def test_hostile_expression_when_calculated_then_refused_within_a_second(expression: str) -> None:
    started = time.perf_counter()
    with pytest.raises(CalculatorError):
        calculate(expression)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("expression", "value"),
    [("(" * 200 + "1" + ")" * 200, 1), ("round(1e308, -400)", 0.0), ("2**14000", None)],
)
@pytest.mark.timing
def test_edge_expression_when_calculated_then_value_or_error_within_a_second(
    expression: str, value: float | None
) -> None:
    started = time.perf_counter()
    try:
        assert calculate(expression) == value
    except CalculatorError:
        assert value is None
    assert time.perf_counter() - started < 1.0


def test_largest_allowed_results_when_calculated_then_exact() -> None:
    assert calculate("factorial(1000)") == math.factorial(1000)
    assert calculate("2**1000*2**1000") == 2**2000
    assert calculate("2**13999") == 2**13999
    assert calculate("round(123456, -3)") == 123000


_LEAVES = st.one_of(
    st.integers(-20, 20).map(str),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["999", "1000", "1000000", "1000000000", "-1000000000", "pi", "1e308", "0.5"]),
)
_OPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])
_UNARY_FUNCTIONS = st.sampled_from(["sqrt", "floor", "ceil", "factorial", "abs", "round", "exp", "log"])
_BINARY_FUNCTIONS = st.sampled_from(["round", "gcd", "hypot", "min", "max", "atan2", "log"])


def _trees(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, _OPS, children).map(lambda t: f"({t[0]}){t[1]}({t[2]})"),
        st.tuples(_UNARY_FUNCTIONS, children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(_BINARY_FUNCTIONS, children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
    )


@pytest.fixture(scope="module")
def workers() -> Iterator[ToolWorkers]:
    pool = ToolWorkers(max_workers=1)
    try:
        yield pool
    finally:
        pool.close()


@pytest.mark.timing
@settings(max_examples=300, deadline=None)
@given(st.recursive(_LEAVES, _trees, max_leaves=6))
def test_expression_tree_when_calculated_then_answer_or_error_within_a_second(
    workers: ToolWorkers, expression: str
) -> None:
    """In a killable worker, so a missing bound shows as a time-out instead of a hung test."""

    async def run() -> str:
        return str(await asyncio.wait_for(workers.run(calculate_text, expression), 1.0))

    try:
        asyncio.run(run())
    except WorkerError as exc:
        assert str(exc)  # a calculator error, with a message
    except TimeoutError:
        pytest.fail(f"{expression!r} ran for more than a second")
