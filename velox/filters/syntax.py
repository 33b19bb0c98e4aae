"""The syntax tree of a filter expression (what the parser builds and the compiler reads)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["And", "Compare", "Contains", "Flag", "Literal", "Member", "Node", "Not", "Or"]

Literal = str | int | float | bool


@dataclass(frozen=True)
class Compare:
    """`column <op> value` with op one of == != < <= > >=."""

    column: str
    op: str
    value: Literal
    position: int
    value_position: int


@dataclass(frozen=True)
class Member:
    """`column in (v, ...)`, or `column not in (v, ...)` when negated."""

    column: str
    values: tuple[Literal, ...]
    negated: bool
    position: int
    value_position: int


@dataclass(frozen=True)
class Contains:
    """`column contains 'text'`: substring of a string, element of a string list."""

    column: str
    value: Literal
    position: int
    value_position: int


@dataclass(frozen=True)
class Flag:
    """A bare boolean column used as a condition."""

    column: str
    position: int


@dataclass(frozen=True)
class Not:
    """Negation; a missing value stays a non-match (three-valued logic)."""

    operand: Node


@dataclass(frozen=True)
class And:
    """Conjunction of two or more conditions."""

    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Disjunction of two or more conditions."""

    operands: tuple[Node, ...]


Node = Compare | Member | Contains | Flag | Not | And | Or
