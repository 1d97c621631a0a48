"""``-k EXPR``: which cases a run, or a list, takes.

pytest's form: words matched (as lower-case substrings) against a case's id,
title, group and tags, joined by ``and``, ``or``, ``not`` and parentheses::

    synack and not ci
    (handshake or close) and not ipv6

The expression comes from the command line: it is parsed here by a small
recursive-descent parser (never handed to ``eval``), with bounded length and
nesting, and anything else is a :class:`~conformance.core.errors.ConformanceError`
that says what is valid (exit 2).

Grammar, loosest first::

    expr := term ("or" term)*
    term := factor ("and" factor)*
    factor := "not"* (WORD | "(" expr ")")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import ConformanceError

if TYPE_CHECKING:
    from ..core.model import Case

#: The most words (and operators, and parentheses) an expression may have, and the deepest parentheses.
MAX_TOKENS = 500
MAX_DEPTH = 32
HOW = "words joined by and, or, not and parentheses, e.g. -k 'synack and not ci'"
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_OPERATORS = ("and", "or", "not", "(", ")")


@dataclass(frozen=True)
class Word:
    text: str  # lower case

    def matches(self, hay: str) -> bool:
        return self.text in hay


@dataclass(frozen=True)
class Not:
    inner: Node

    def matches(self, hay: str) -> bool:
        return not self.inner.matches(hay)


@dataclass(frozen=True)
class All:
    parts: tuple[Node, ...]

    def matches(self, hay: str) -> bool:
        return all(p.matches(hay) for p in self.parts)


@dataclass(frozen=True)
class Any_:
    parts: tuple[Node, ...]

    def matches(self, hay: str) -> bool:
        return any(p.matches(hay) for p in self.parts)


Node = Word | Not | All | Any_


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _TOKEN.findall(expr)
        self.at = 0
        self.depth = 0
        if len(self.tokens) > MAX_TOKENS:
            raise self.error(f"more than {MAX_TOKENS} words and operators")

    def error(self, problem: str) -> ConformanceError:
        shown = self.expr if len(self.expr) <= 80 else self.expr[:77] + "..."
        return ConformanceError(f"-k {shown!r}: {problem}; valid: {HOW}")

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str | None:
        tok = self.peek()
        self.at += 1
        return tok

    def parse(self) -> Node:
        node = self.any_()
        if self.peek() is not None:
            before = self.tokens[self.at - 1] if self.at else ""
            raise self.error(f"expected and, or or the end after {before!r}, found {self.peek()!r}")
        return node

    def any_(self) -> Node:
        parts = [self.all_()]
        while self.peek() == "or":
            self.take()
            parts.append(self.all_())
        return parts[0] if len(parts) == 1 else Any_(tuple(parts))

    def all_(self) -> Node:
        parts = [self.factor()]
        while self.peek() == "and":
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def factor(self) -> Node:
        negate = False
        while self.peek() == "not":  # a loop, not recursion: any number of nots
            self.take()
            negate = not negate
        tok = self.take()
        if tok is None:
            raise self.error("ends where a word or '(' was expected")
        if tok == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"parentheses nested more than {MAX_DEPTH} deep")
            node = self.any_()
            if self.take() != ")":
                raise self.error("a '(' without its ')'")
            self.depth -= 1
        elif tok in _OPERATORS:
            raise self.error(f"{tok!r} where a word or '(' was expected")
        else:
            node = Word(tok.lower())
        return Not(node) if negate else node


def parse_selection(expr: str) -> Node:
    """The parsed ``-k`` expression; ConformanceError (saying what is valid) when it is not one."""
    return _Parser(expr).parse()


def select(cases: list[Case], expr: str | None) -> list[Case]:
    """The cases whose id, title, group or tags `expr` matches (all of them for no expression)."""
    if not expr:
        return cases
    node = parse_selection(expr)
    return [c for c in cases if node.matches(" ".join([c.id, c.title, c.group, *c.tags]).lower())]
