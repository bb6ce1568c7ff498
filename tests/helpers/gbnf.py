"""A small GBNF recognizer for tests: parse a grammar, then ask if a text matches a rule.

llama-cpp-python's server dies on a grammar it cannot parse, so grammar tests check here,
offline, that every referenced rule exists and that the grammar accepts the JSON it should
and rejects the JSON it should not. It covers the GBNF that `synaray.lm.grammar` emits:
one rule per line, literals, character classes (with ranges, `^`, `\\xHH` escapes), rule
references, groups, alternatives and the postfixes `? * + {m} {m,} {m,n}`.

Example:
    >>> Grammar('root ::= "a" [0-9]{1,2}').matches("a42")
    True
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Grammar", "GrammarSyntaxError"]

Node = tuple[Any, ...]


class GrammarSyntaxError(ValueError):
    pass


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]",
            "-": "-", "/": "/", "^": "^"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def error(self, message: str) -> GrammarSyntaxError:
        return GrammarSyntaxError(f"{message} at {self.i}: {self.text[self.i:self.i + 30]!r}")

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.i] if self.i < len(self.text) else ""

    def alternatives(self) -> Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else ("alt", options)

    def sequence(self) -> Node:
        items = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.postfix(self.primary()))
        return ("seq", items)

    def primary(self) -> Node:
        ch = self.peek()
        if ch == '"':
            return self.literal()
        if ch == "[":
            return self.char_class()
        if ch == "(":
            self.i += 1
            node = self.alternatives()
            if self.peek() != ")":
                raise self.error("expected ')'")
            self.i += 1
            return node
        match = re.compile(r"[a-zA-Z0-9-]+").match(self.text, self.i)
        if not match:
            raise self.error("expected a literal, a class, a group or a rule name")
        self.i = match.end()
        return ("ref", match.group())

    def escape(self) -> str:
        self.i += 1  # the backslash
        ch = self.text[self.i]
        if ch == "x":
            value, self.i = int(self.text[self.i + 1:self.i + 3], 16), self.i + 3
            return chr(value)
        if ch == "u":
            value, self.i = int(self.text[self.i + 1:self.i + 5], 16), self.i + 5
            return chr(value)
        if ch not in _ESCAPES:
            raise self.error(f"unknown escape \\{ch}")
        self.i += 1
        return _ESCAPES[ch]

    def literal(self) -> Node:
        self.i += 1
        out = []
        while self.text[self.i] != '"':
            if self.text[self.i] == "\\":
                out.append(self.escape())
            else:
                out.append(self.text[self.i])
                self.i += 1
        self.i += 1
        return ("lit", "".join(out))

    def class_char(self) -> str:
        if self.text[self.i] == "\\":
            return self.escape()
        ch = self.text[self.i]
        self.i += 1
        return ch

    def char_class(self) -> Node:
        self.i += 1
        negate = self.text[self.i] == "^"
        self.i += int(negate)
        ranges = []
        while self.text[self.i] != "]":
            low = self.class_char()
            high = low
            if self.text[self.i] == "-" and self.text[self.i + 1] != "]":
                self.i += 1
                high = self.class_char()
            ranges.append((low, high))
        self.i += 1
        return ("cls", negate, ranges)

    def postfix(self, node: Node) -> Node:
        if self.i < len(self.text) and self.text[self.i] in "?*+":
            op = self.text[self.i]
            self.i += 1
            return ("rep", node, 1 if op == "+" else 0, 1 if op == "?" else None)
        match = re.compile(r"\{(\d+)(,(\d*))?\}").match(self.text, self.i)
        if match:
            self.i = match.end()
            low = int(match.group(1))
            if match.group(2) is None:
                high: int | None = low
            else:
                high = int(match.group(3)) if match.group(3) else None
            return ("rep", node, low, high)
        return node


class Grammar:
    """A parsed GBNF grammar (raises `GrammarSyntaxError` on bad syntax or missing rules)."""

    def __init__(self, text: str) -> None:
        self.rules: dict[str, Node] = {}
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, body = line.partition("::=")
            if not sep or not re.fullmatch(r"[a-zA-Z0-9-]+", name.strip()):
                raise GrammarSyntaxError(f"bad rule line: {line!r}")
            parser = _Parser(body)
            node = parser.alternatives()
            if parser.peek():
                raise parser.error("unexpected text")
            if name.strip() in self.rules:
                raise GrammarSyntaxError(f"rule {name.strip()!r} defined twice")
            self.rules[name.strip()] = node
        for name in self._references():
            if name not in self.rules:
                raise GrammarSyntaxError(f"undefined rule {name!r}")
        if "root" not in self.rules:
            raise GrammarSyntaxError("no root rule")

    def _references(self) -> set[str]:
        found: set[str] = set()

        def walk(node: Node) -> None:
            kind = node[0]
            if kind == "ref":
                found.add(node[1])
            elif kind in ("alt", "seq"):
                for child in node[1]:
                    walk(child)
            elif kind == "rep":
                walk(node[1])

        for node in self.rules.values():
            walk(node)
        return found

    def matches(self, text: str, rule: str = "root") -> bool:
        """True when the whole of `text` is derived from `rule`."""
        self._memo: dict[tuple[int, int], frozenset[int]] = {}
        self._text = text
        return len(text) in self._match(("ref", rule), 0)

    def _match(self, node: Node, pos: int) -> frozenset[int]:
        key = (id(node), pos)
        if key not in self._memo:
            self._memo[key] = frozenset()  # guards against (unexpected) left recursion
            self._memo[key] = frozenset(self._match_uncached(node, pos))
        return self._memo[key]

    def _match_uncached(self, node: Node, pos: int) -> set[int]:
        kind, text = node[0], self._text
        if kind == "lit":
            return {pos + len(node[1])} if text.startswith(node[1], pos) else set()
        if kind == "cls":
            if pos >= len(text):
                return set()
            inside = any(lo <= text[pos] <= hi for lo, hi in node[2])
            return {pos + 1} if inside != node[1] else set()
        if kind == "ref":
            return set(self._match(self.rules[node[1]], pos))
        if kind == "alt":
            return set().union(*(self._match(option, pos) for option in node[1]))
        if kind == "seq":
            positions = {pos}
            for item in node[1]:
                positions = set().union(*(self._match(item, p) for p in positions))
                if not positions:
                    break
            return positions
        return self._repeat(node, pos)

    def _repeat(self, node: Node, pos: int) -> set[int]:
        _, child, low, high = node
        ends: set[int] = {pos} if low == 0 else set()
        frontier, count, seen = {pos}, 0, {pos}
        while frontier and (high is None or count < high):
            frontier = set().union(*(self._match(child, p) for p in frontier))
            count += 1
            if high is None and count >= low:  # unbounded: a position seen twice adds nothing
                frontier -= seen
                seen |= frontier
            if count >= low:
                ends |= frontier
        return ends
