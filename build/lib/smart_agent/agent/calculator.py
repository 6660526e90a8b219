"""Safe arithmetic: parsed with `ast`, only whitelisted operators and math functions, never eval.

Every intermediate result is bounded *before* it is computed (bit length of products and powers,
`round` digits, factorial, argument counts, nesting depth), so no expression of at most
MAX_EXPRESSION_CHARS characters costs more than milliseconds or a few kilobytes.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 500
MAX_INT_BITS = 14_000  # about 4,200 digits: below Python's int-to-str limit of 4,300
MAX_ROUND_DIGITS = 1000
MAX_FACTORIAL = 1000
MAX_ARGUMENTS = 50
MAX_DEPTH = 50

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(math, name)
    for name in (
        "sqrt",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "exp",
        "log",
        "log10",
        "log2",
        "floor",
        "ceil",
        "factorial",
        "degrees",
        "radians",
        "hypot",
        "gcd",
    )
} | {"abs": abs, "round": round, "min": min, "max": max}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be computed."""


def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise CalculatorError(f"expression nested deeper than {MAX_DEPTH} levels") from None
    try:
        result: int | float = _checked(_eval(tree.body, 0))
    except (ArithmeticError, ValueError, TypeError) as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError(str(exc) or type(exc).__name__) from None
    return result


def calculate_text(expression: str) -> str:
    """The calculator's answer as text (the int-to-str conversion is bounded too)."""
    return str(calculate(expression))


def _checked(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculatorError(f"result is not a real number: {type(value).__name__}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("result too large")
    return value


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _check_binary(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too large, before computing it."""
    if isinstance(op, ast.Mult) and _int_bits(left) + _int_bits(right) - 1 > MAX_INT_BITS:
        raise CalculatorError("result too large")
    if not isinstance(op, ast.Pow):
        return
    # (bits - 1) * exponent is a lower bound of the power's bit length: past the limit, refuse.
    if isinstance(left, int) and isinstance(right, int) and right > 0:
        if (_int_bits(left) - 1) * right > MAX_INT_BITS:
            raise CalculatorError("result too large")


def _check_call(name: str, args: list[Any]) -> None:
    # (the argument count is checked before the arguments are computed, in _eval)
    if name == "factorial" and args and args[0] > MAX_FACTORIAL:
        raise CalculatorError(f"factorial argument larger than {MAX_FACTORIAL}")
    if name == "round" and len(args) > 1 and isinstance(args[1], int) and abs(args[1]) > MAX_ROUND_DIGITS:
        raise CalculatorError(f"round() digits beyond ±{MAX_ROUND_DIGITS}")


def _eval(node: ast.expr, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CalculatorError(f"expression nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        _check_binary(node.op, left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, depth + 1))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        if len(node.args) > MAX_ARGUMENTS:
            raise CalculatorError(f"{node.func.id}() takes at most {MAX_ARGUMENTS} arguments here")
        args = [_eval(arg, depth + 1) for arg in node.args]
        _check_call(node.func.id, args)
        return _checked(_FUNCTIONS[node.func.id](*args))
    raise CalculatorError(f"not allowed: {_describe(node)}")


def _describe(node: ast.expr) -> str:
    try:
        text = ast.unparse(node)
    except RecursionError:
        text = type(node).__name__
    return text if len(text) <= 80 else text[:79] + "…"
