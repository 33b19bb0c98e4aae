"""Tokens of a filter expression: a hand-written scanner, nothing is ever evaluated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from velox.errors import FilterSyntaxError

__all__ = ["MAX_LENGTH", "Token", "TokenKind", "tokenize"]

MAX_LENGTH = 2000
"""Longest expression accepted, in characters."""


class TokenKind(Enum):
    """The kinds of token the grammar knows."""

    NAME = "name"
    KEYWORD = "keyword"
    STRING = "string"
    NUMBER = "number"
    OPERATOR = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    END = "end of input"


KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "true", "false"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_PUNCTUATION = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True)
class Token:
    """One token: its kind, its value (text, or the parsed literal) and where it starts."""

    kind: TokenKind
    value: str | int | float
    position: int


def _string(expr: str, start: int) -> tuple[str, int]:
    """Scan the quoted string starting at `start`; return its value and the end position."""
    quote = expr[start]
    parts: list[str] = []
    i = start + 1
    while i < len(expr):
        char = expr[i]
        if char == quote:
            return "".join(parts), i + 1
        if char == "\\":
            if i + 1 >= len(expr) or expr[i + 1] not in _ESCAPES:
                raise FilterSyntaxError("unknown escape sequence in string", i)
            parts.append(_ESCAPES[expr[i + 1]])
            i += 2
            continue
        parts.append(char)
        i += 1
    raise FilterSyntaxError("unterminated string", start)


def _number(text: str) -> int | float:
    """The value of a numeric literal: an int when written without a point or exponent."""
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def tokenize(expr: str) -> list[Token]:
    """Split `expr` into tokens, ending with an END token; FilterSyntaxError on bad input."""
    if len(expr) > MAX_LENGTH:
        raise FilterSyntaxError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tokens: list[Token] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
            continue
        if char in "'\"":
            value, end = _string(expr, i)
            tokens.append(Token(TokenKind.STRING, value, i))
            i = end
            continue
        if char in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[char], char, i))
            i += 1
            continue
        operator = next((op for op in _OPERATORS if expr.startswith(op, i)), None)
        if operator is not None:
            tokens.append(Token(TokenKind.OPERATOR, operator, i))
            i += len(operator)
            continue
        number = _NUMBER.match(expr, i)
        if number is not None:
            end = number.end()
            if end < len(expr) and (expr[end].isalnum() or expr[end] in "_."):
                raise FilterSyntaxError(f"malformed number {expr[i : end + 1]!r}", i)
            tokens.append(Token(TokenKind.NUMBER, _number(number.group()), i))
            i = end
            continue
        name = _NAME.match(expr, i)
        if name is not None:
            word = name.group()
            kind = TokenKind.KEYWORD if word in KEYWORDS else TokenKind.NAME
            tokens.append(Token(kind, word, i))
            i = name.end()
            continue
        raise FilterSyntaxError(f"unexpected character {char!r}", i)
    tokens.append(Token(TokenKind.END, "", len(expr)))
    return tokens
