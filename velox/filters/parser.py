"""Recursive-descent parser from tokens to a syntax tree, with bounded nesting.

Grammar (keywords are lower case)::

    expression := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation   := "not" negation | primary
    primary    := "(" expression ")" | condition
    condition  := NAME ( OP literal | "in" list | "not" "in" list | "contains" literal )?
    list       := "(" literal ("," literal)* ","? ")"
    literal    := STRING | NUMBER | "true" | "false"

A NAME alone is a boolean column used as a condition.
"""

from __future__ import annotations

from velox.errors import FilterSyntaxError
from velox.filters.lexer import Token, TokenKind, tokenize
from velox.filters.syntax import And, Compare, Contains, Flag, Literal, Member, Node, Not, Or

__all__ = ["MAX_DEPTH", "parse"]

MAX_DEPTH = 32
"""Deepest nesting of parentheses and `not` accepted."""


class _Parser:
    """Holds the token stream and the current nesting depth while parsing one expression."""

    def __init__(self, tokens: list[Token]) -> None:
        """Start at the first token."""
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind is not TokenKind.END:
            self._index += 1
        return token

    def _is_keyword(self, word: str) -> bool:
        token = self._peek()
        return token.kind is TokenKind.KEYWORD and token.value == word

    def _expect(self, kind: TokenKind, what: str) -> Token:
        token = self._peek()
        if token.kind is not kind:
            raise FilterSyntaxError(f"expected {what}, found {_describe(token)}", token.position)
        return self._advance()

    def _enter(self, position: int) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise FilterSyntaxError(f"expression nested deeper than {MAX_DEPTH} levels", position)

    def parse(self) -> Node:
        """The whole expression; anything left over is an error."""
        node = self._expression()
        self._expect(TokenKind.END, "'and', 'or' or the end of the expression")
        return node

    def _expression(self) -> Node:
        operands = [self._conjunction()]
        while self._is_keyword("or"):
            self._advance()
            operands.append(self._conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _conjunction(self) -> Node:
        operands = [self._negation()]
        while self._is_keyword("and"):
            self._advance()
            operands.append(self._negation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _negation(self) -> Node:
        if not self._is_keyword("not"):
            return self._primary()
        self._enter(self._advance().position)
        node = Not(self._negation())
        self._depth -= 1
        return node

    def _primary(self) -> Node:
        token = self._peek()
        if token.kind is TokenKind.LPAREN:
            self._enter(self._advance().position)
            node = self._expression()
            self._expect(TokenKind.RPAREN, "')'")
            self._depth -= 1
            return node
        return self._condition()

    def _condition(self) -> Node:
        name = self._expect(TokenKind.NAME, "a column name")
        column = str(name.value)
        token = self._peek()
        if token.kind is TokenKind.OPERATOR:
            self._advance()
            value, at = self._literal()
            return Compare(column, str(token.value), value, name.position, at)
        if self._is_keyword("in"):
            self._advance()
            values, at = self._list()
            return Member(column, values, False, name.position, at)
        if self._is_keyword("not"):
            self._advance()
            if not self._is_keyword("in"):
                raise FilterSyntaxError(
                    f"expected 'in' after 'not', found {_describe(self._peek())}",
                    self._peek().position,
                )
            self._advance()
            values, at = self._list()
            return Member(column, values, True, name.position, at)
        if self._is_keyword("contains"):
            self._advance()
            value, at = self._literal()
            return Contains(column, value, name.position, at)
        if token.kind in (TokenKind.LPAREN, TokenKind.NAME, TokenKind.STRING, TokenKind.NUMBER):
            raise FilterSyntaxError(
                f"expected an operator after column {column!r}, found {_describe(token)}",
                token.position,
            )
        return Flag(column, name.position)

    def _list(self) -> tuple[tuple[Literal, ...], int]:
        start = self._expect(TokenKind.LPAREN, "'(' to start a list")
        values = [self._literal()[0]]
        while self._peek().kind is TokenKind.COMMA:
            self._advance()
            if self._peek().kind is TokenKind.RPAREN:
                break
            values.append(self._literal()[0])
        self._expect(TokenKind.RPAREN, "',' or ')'")
        return tuple(values), start.position

    def _literal(self) -> tuple[Literal, int]:
        token = self._advance()
        if token.kind in (TokenKind.STRING, TokenKind.NUMBER):
            return token.value, token.position
        if token.kind is TokenKind.KEYWORD and token.value in ("true", "false"):
            return token.value == "true", token.position
        raise FilterSyntaxError(
            f"expected a string, number, true or false, found {_describe(token)}", token.position
        )


def _describe(token: Token) -> str:
    """How a token is named in error messages."""
    if token.kind is TokenKind.END:
        return "the end of the expression"
    if token.kind in (TokenKind.NAME, TokenKind.KEYWORD, TokenKind.STRING, TokenKind.NUMBER):
        return f"{token.kind.value} {token.value!r}"
    return repr(token.value)


def parse(expr: str) -> Node:
    """Parse a filter expression into its syntax tree; FilterSyntaxError with the position."""
    return _Parser(tokenize(expr)).parse()
