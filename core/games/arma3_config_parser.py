"""Reading Arma config syntax back (the server.cfg writer's inverse).

Kept apart from the writer in core/games/arma3_config.py: tests and the fake server parse
what the product writes, to prove the escaping round-trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.games.arma3_config import Assign, ConfigClass, ConfigValue

__all__ = ["ConfigParseError", "parse_config"]


class ConfigParseError(ValueError):
    """The text is not valid config syntax; the message names the line."""


_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n\ufeff]+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<string>"(?:[^"]|"")*")
  | (?P<newline_token>\\n)
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))(?![A-Za-z_])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>\+=|\[\]|[{}();=,:])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    line: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    line = 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConfigParseError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind not in ("space", "line_comment", "block_comment"):
            tokens.append(_Tok(kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self._toks = tokens
        self._i = 0

    def _peek(self) -> _Tok | None:
        return self._toks[self._i] if self._i < len(self._toks) else None

    def _peek_is(self, text: str) -> bool:
        tok = self._peek()
        return tok is not None and tok.text == text

    def _next(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            last = self._toks[-1].line if self._toks else 1
            raise ConfigParseError(f"line {last}: unexpected end of file")
        self._i += 1
        return tok

    def _expect(self, text: str) -> None:
        tok = self._next()
        if tok.text != text:
            raise ConfigParseError(f"line {tok.line}: expected {text!r}, found {tok.text!r}")

    def body(self, closing: bool) -> list[Assign | ConfigClass]:
        entries: list[Assign | ConfigClass] = []
        while True:
            tok = self._peek()
            if tok is None:
                if closing:
                    self._next()
                return entries
            if tok.text == "}" and closing:
                return entries
            entries.append(self.entry())

    def entry(self) -> Assign | ConfigClass:
        tok = self._next()
        if tok.kind != "name":
            raise ConfigParseError(f"line {tok.line}: expected a name, found {tok.text!r}")
        if tok.text == "class":
            name = self._next()
            if name.kind != "name":
                raise ConfigParseError(f"line {name.line}: expected a class name")
            if self._peek_is(":"):
                self._next()
                self._next()  # the base class: not modelled, our files never use it
            cls = ConfigClass(name.text)
            if self._peek_is("{"):
                self._next()
                cls.entries = self.body(closing=True)
                self._expect("}")
            self._semicolon(name)
            return cls
        if self._peek_is("[]"):
            self._next()
            op = self._next()
            if op.text not in ("=", "+="):
                raise ConfigParseError(f"line {op.line}: expected '=' after {tok.text}[]")
            value: ConfigValue = self.array()
        else:
            self._expect("=")
            value = self.value()
        self._semicolon(tok)
        return Assign(tok.text, value)

    def _semicolon(self, after: _Tok) -> None:
        tok = self._peek()
        if tok is None or tok.text != ";":
            raise ConfigParseError(f"line {after.line}: missing ';' at the end of line")
        self._next()

    def array(self) -> list[ConfigValue]:
        self._expect("{")
        items: list[ConfigValue] = []
        while True:
            if self._peek_is("}"):
                self._next()
                return items
            items.append(self.array() if self._peek_is("{") else self.value())
            sep = self._next()
            if sep.text == "}":
                return items
            if sep.text != ",":
                raise ConfigParseError(f"line {sep.line}: expected ',' or '}}' in an array")

    def value(self) -> ConfigValue:
        tok = self._next()
        if tok.kind == "string":
            parts = [tok.text[1:-1].replace('""', '"')]
            while self._peek_is("\\n"):
                self._next()
                nxt = self._next()
                if nxt.kind != "string":
                    raise ConfigParseError(f"line {nxt.line}: expected a string after \\n")
                parts.append(nxt.text[1:-1].replace('""', '"'))
            return "\n".join(parts)
        if tok.kind == "number":
            return _number(tok.text)
        if tok.kind == "name":
            return tok.text  # Arma reads a bare word as a string
        raise ConfigParseError(f"line {tok.line}: expected a value, found {tok.text!r}")


def _number(text: str) -> int | float:
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body[:2].lower() == "0x":
        return sign * int(body, 16)
    if re.fullmatch(r"\d+", body):
        return sign * int(body)
    return sign * float(body)


def parse_config(text: str) -> ConfigClass:
    """Read Arma config text into a tree (raises ConfigParseError naming the line)."""
    parser = _Parser(_tokenize(text))
    return ConfigClass("", parser.body(closing=False))


# --- BattlEye: beserver cfg and bans.txt -------------------------------------------------
