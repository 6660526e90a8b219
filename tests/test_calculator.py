"""The calculator: arithmetic and math functions only, bounded, never eval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smart_agent.agent.calculator import CalculatorError, calculate


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
        ("9 ** 9999", "exponent larger than 1000"),
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
