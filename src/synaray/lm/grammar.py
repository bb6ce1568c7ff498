"""JSON schema -> GBNF grammar, for constrained decoding on llama.cpp servers.

llama.cpp accepts a GBNF grammar with each request (`extra_body={"grammar": ...}`) and only
samples tokens the grammar allows, so even a 135M model returns JSON of the right shape.
`schema_to_gbnf` covers what pydantic emits for `DataModel`s:

- objects: properties in declared order; required ones always, optional ones may be left
  out; `additionalProperties` maps for objects without properties;
- string (JSON escapes, `minLength`/`maxLength`; optionally at most `max_string_length`
  characters), integer, number, boolean, null;
- `enum` and `const` (Literal), arrays (`items`, `minItems`/`maxItems`, `prefixItems`),
  nested objects, `$ref` into `$defs`/`definitions` (recursion included), `anyOf`/`oneOf`
  (Optional), `allOf`, type lists such as `["string", "null"]`;
- anything else (`{}`, `Any`) accepts any JSON value.

Whitespace between tokens is limited to a few characters. Strings are unbounded by default:
llama.cpp expands a bounded repetition `x{0,N}` into N nested optional rules, which was
slower to sample from in our runs, and `max_tokens` already stops a model that loops inside
a string (the truncated answer then gets the repair attempt). Formats, patterns and numeric
bounds are left to pydantic: a value that breaks them fails validation and gets the repair
attempt of `LanguageModel`.

Beware: llama-cpp-python's server dies on a grammar it cannot parse, so grammars are only
ever produced here and the tests check them with a GBNF matcher.

Example:
    >>> print(schema_to_gbnf({"type": "object", "properties": {
    ...     "answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}))
    root ::= "{" ws "\\"answer\\"" ws ":" ws root-answer ws "}"
    root-answer ::= "\\"yes\\"" | "\\"no\\""
    ws ::= [ \\t\\n]{0,8}
"""

from __future__ import annotations

import json
import re
from typing import Any

from synaray.errors import ConfigError

__all__ = ["gbnf_literal", "schema_to_gbnf"]

DEFAULT_MAX_STRING_LENGTH: int | None = None

_PRIMITIVES = {
    "ws": r"[ \t\n]{0,8}",
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "integer": r'"-"? ("0" | [1-9] [0-9]{0,18})',
    "number": r'"-"? ("0" | [1-9] [0-9]{0,18}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": r'"true" | "false"',
    "null": r'"null"',
    "value": "object-any | array-any | string | number | boolean | null",
    "object-any": (r'"{" ws ( string ws ":" ws value ( "," ws string ws ":" ws value )* )? '
                   r'ws "}"'),
    "array-any": r'"[" ws ( value ( "," ws value )* )? ws "]"',
}
# The primitive rules each primitive rule uses (added with it).
_PRIMITIVE_DEPS = {
    "string": ("char",),
    "value": ("object-any", "array-any", "string", "number", "boolean", "null"),
    "object-any": ("ws", "string", "value"),
    "array-any": ("ws", "value"),
}
_SCALAR_TYPES = ("string", "integer", "number", "boolean", "null")


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal.

    Example:
        >>> print(gbnf_literal('say "hi"'))
        "say \\"hi\\""
    """
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value: Any) -> str:
    return gbnf_literal(json.dumps(value, ensure_ascii=False))


def schema_to_gbnf(schema: dict, *,
                   max_string_length: int | None = DEFAULT_MAX_STRING_LENGTH) -> str:
    """A GBNF grammar whose `root` rule accepts exactly the JSON documents shaped by `schema`.

    Args:
        schema: a JSON schema (as from `DataModel.get_schema()`).
        max_string_length: upper bound on the characters of a string without `maxLength`
            (None, the default = unbounded; `max_tokens` still stops a looping model).

    Returns:
        The grammar text, one rule per line, `root` first.

    Raises:
        ConfigError: `schema` is not a dict, or a `$ref` cannot be resolved.
    """
    if not isinstance(schema, dict):
        raise ConfigError(
            f"Invalid value for argument `schema`. Received: {type(schema).__name__}. "
            "Expected a JSON schema dict."
        )
    return _GrammarBuilder(schema, max_string_length).build()


class _GrammarBuilder:
    def __init__(self, schema: dict, max_string_length: int | None) -> None:
        self.schema = schema
        self.defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
        self.max_string_length = max_string_length
        self.rules: dict[str, str] = {}
        self.by_body: dict[str, str] = {}
        self.by_ref: dict[str, str] = {}
        self.primitives: set[str] = set()

    def build(self) -> str:
        self.rules["root"] = ""  # a placeholder, filled by the rule built for the schema
        expression = self.visit(self.schema, "root")
        if expression != "root":
            self.rules["root"] = expression
        lines = [f"{name} ::= {body}" for name, body in self.rules.items()]
        lines += [f"{name} ::= {self._primitive_body(name)}" for name in sorted(self.primitives)]
        return "\n".join(lines)

    # -- rules -----------------------------------------------------------------------
    def _primitive(self, name: str) -> str:
        if name not in self.primitives:
            self.primitives.add(name)
            for dep in _PRIMITIVE_DEPS.get(name, ()):
                self._primitive(dep)
        return name

    def _primitive_body(self, name: str) -> str:
        if name == "string":
            return '"\\"" char' + self._repeat(0, self.max_string_length) + ' "\\""'
        return _PRIMITIVES[name]

    @staticmethod
    def _repeat(low: int, high: int | None) -> str:
        if high is None:
            return "*" if low == 0 else ("+" if low == 1 else f"{{{low},}}")
        return f"{{{low},{high}}}"

    def _rule(self, hint: str, body: str) -> str:
        if self.rules.get(hint) == "":  # the placeholder of a `$ref` (or root) being built
            self.rules[hint] = body
            self.by_body.setdefault(body, hint)
            return hint
        if body in self.by_body:
            return self.by_body[body]
        name = self._fresh_name(hint)
        self.rules[name] = body
        self.by_body[body] = name
        return name

    def _fresh_name(self, hint: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-").lower() or "rule"
        name, n = base, 1
        while name in self.rules or name in _PRIMITIVES or name in ("string", "char"):
            n += 1
            name = f"{base}-{n}"
        return name

    # -- schema nodes ----------------------------------------------------------------
    def visit(self, node: Any, hint: str) -> str:  # noqa: C901 - one branch per keyword
        if node is True or node == {} or not isinstance(node, dict):
            return self._primitive("value")
        if "$ref" in node:
            return self._ref(node["$ref"])
        if "const" in node:
            return self._rule(hint, _json_literal(node["const"]))
        if "enum" in node:
            return self._rule(hint, " | ".join(_json_literal(v) for v in node["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in node:
                return self._alternatives(node[key], hint)
        if "allOf" in node:
            return self._all_of(node, hint)
        kind = node.get("type")
        if isinstance(kind, list):
            return self._alternatives([{**node, "type": k} for k in kind], hint)
        if kind == "object" or (kind is None and "properties" in node):
            return self._object(node, hint)
        if kind == "array" or (kind is None and ("items" in node or "prefixItems" in node)):
            return self._array(node, hint)
        if kind == "string":
            return self._string(node, hint)
        if kind in _SCALAR_TYPES:
            return self._primitive(kind)
        return self._primitive("value")

    def _ref(self, ref: str) -> str:
        if ref in self.by_ref:
            return self.by_ref[ref]
        if ref == "#":
            target, name = self.schema, "root"
        else:
            match = re.fullmatch(r"#/(\$defs|definitions)/(.+)", ref)
            if not match or match.group(2) not in self.defs:
                raise ConfigError(f"Cannot resolve the schema reference {ref!r}: expected "
                                  "'#/$defs/<name>' with <name> defined in `$defs`.")
            target, name = self.defs[match.group(2)], self._fresh_name(match.group(2))
        self.by_ref[ref] = name
        if name != "root":
            self.rules[name] = ""  # placeholder: the body may refer to this rule
            expression = self.visit(target, name)
            if expression != name:
                self.rules[name] = expression
        return name

    def _alternatives(self, options: list, hint: str) -> str:
        names = [self.visit(option, f"{hint}-{i}") for i, option in enumerate(options)]
        unique = list(dict.fromkeys(names))
        if len(unique) == 1:
            return unique[0]
        return self._rule(hint, " | ".join(unique))

    def _all_of(self, node: dict, hint: str) -> str:
        parts = node["allOf"]
        if len(parts) == 1:
            return self.visit(parts[0], hint)
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in parts:
            part = self._deref(part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return self._object(merged, hint)

    def _deref(self, node: dict) -> dict:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            name = node["$ref"].rsplit("/", 1)[-1]
            node, seen = self.defs.get(name, {}), seen + 1
        return node

    def _string(self, node: dict, hint: str) -> str:
        low, high = node.get("minLength"), node.get("maxLength")
        if low is None and high is None:
            return self._primitive("string")
        self._primitive("char")
        high = high if high is not None else self.max_string_length
        body = '"\\"" char' + self._repeat(int(low or 0), high) + ' "\\""'
        return self._rule(hint, body)

    def _array(self, node: dict, hint: str) -> str:
        ws = self._primitive("ws")
        if "prefixItems" in node:
            items = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(node["prefixItems"])]
            inner = f' "," {ws} '.join(items)
            body = f'"[" {ws} {inner} {ws} "]"' if items else f'"[" {ws} "]"'
            return self._rule(hint, body)
        item = self.visit(node.get("items", {}), f"{hint}-item")
        low, high = int(node.get("minItems", 0)), node.get("maxItems")
        if high == 0:
            return self._rule(hint, f'"[" {ws} "]"')
        more = f'( "," {ws} {item} )' + self._repeat(max(low - 1, 0),
                                                     None if high is None else high - 1)
        inner = f"{item} {more}"
        if low == 0:
            inner = f"( {inner} )?"
        return self._rule(hint, f'"[" {ws} {inner} {ws} "]"')

    def _object(self, node: dict, hint: str) -> str:
        ws = self._primitive("ws")
        properties = node.get("properties")
        if not properties:
            extra = node.get("additionalProperties")
            if not isinstance(extra, dict) or not extra:
                return self._primitive("object-any")
            string, value = self._primitive("string"), self.visit(extra, f"{hint}-value")
            pair = f'{string} {ws} ":" {ws} {value}'
            return self._rule(hint, f'"{{" {ws} ( {pair} ( "," {ws} {pair} )* )? {ws} "}}"')
        required = set(node.get("required", []))
        pairs = []
        for key, sub in properties.items():
            value = self.visit(sub, f"{hint}-{key}")
            pairs.append((f'{gbnf_literal(json.dumps(key))} {ws} ":" {ws} {value}',
                          key in required))
        return self._rule(hint, f'"{{" {ws} {self._members(pairs, ws)} {ws} "}}"')

    @staticmethod
    def _members(pairs: list[tuple[str, bool]], ws: str) -> str:
        sep = f'"," {ws}'
        first_required = next((i for i, (_, req) in enumerate(pairs) if req), None)
        if first_required is None:
            # Any ordered subset: choose the first member present, then each later one is
            # optional and preceded by a comma.
            choices = []
            for i, (pair, _) in enumerate(pairs):
                tail = " ".join(f"( {sep} {p} )?" for p, _ in pairs[i + 1:])
                choices.append(f"{pair} {tail}".strip())
            return "( " + " | ".join(f"( {c} )" for c in choices) + " )?"
        parts = [f"( {pair} {sep} )?" for pair, _ in pairs[:first_required]]
        parts.append(pairs[first_required][0])
        for pair, req in pairs[first_required + 1:]:
            parts.append(f"{sep} {pair}" if req else f"( {sep} {pair} )?")
        return " ".join(parts)
