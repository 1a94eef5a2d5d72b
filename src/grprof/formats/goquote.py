"""Go string literals and label sets as the Go runtime and `fmt` print them.

Three label syntaxes reach us:
  debug=1 (`fmt` %q, sorted):            {"k":"v", "k2":"v2"}
  Go 1.26 traceback (runtime quoting):    labels:{"k": "v", "k2": "v2"}
  Go 1.27 traceback (quoted only if needed): {k: v, "weird key": "v\\"q"}
A bare key or value matches `[A-Za-z0-9._/]*` (the empty string too); anything else is
quoted. Keys and values are scanned quote-aware, so `}` or `,` inside quotes end nothing.
"""

from __future__ import annotations

import re

_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    '"': 34,
}
# One escape sequence, or a run of characters that need no unescaping.
_TOKEN = re.compile(
    r"\\(?:x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([0-7]{3})|(.))|([^\\]+)", re.S
)
# The end of a quoted literal: the first `"` not preceded by an odd number of backslashes.
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"', re.S)
# What Go leaves bare; we also accept any other character that cannot end a token,
# so a hand-edited `{k: v-1}` still reads.
_BARE = re.compile(r'[^\s",:{}]*')


class LabelSyntaxError(ValueError):
    """A label set that does not parse; `pos` is the index in the text where it went wrong."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"{message} at offset {pos}")
        self.message = message
        self.pos = pos


def unquote(text: str) -> str:
    """The value of the Go double-quoted literal `text` (quotes included).

    `\\xHH` and octal escapes are bytes: several may make one UTF-8 character, and bytes
    that are not valid UTF-8 become U+FFFD. Raises ValueError on a malformed literal.
    """
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"not a Go quoted string: {text[:40]!r}")
    body = text[1:-1]
    if "\\" not in body:
        if '"' in body or "\n" in body:
            raise ValueError(f"unescaped quote or newline in {text[:40]!r}")
        return _clean(body)
    out = bytearray()
    covered = 0
    for m in _TOKEN.finditer(body):
        if m.start() != covered:  # only a lone trailing backslash matches nothing
            break
        covered = m.end()
        hx, u4, u8, octal, ch, plain = m.groups()
        if plain is not None:
            if '"' in plain or "\n" in plain:
                raise ValueError(f"unescaped quote or newline in {text[:40]!r}")
            out += _utf8(plain)
        elif hx is not None:
            out.append(int(hx, 16))
        elif octal is not None:
            value = int(octal, 8)
            if value > 255:
                raise ValueError(f"octal escape \\{octal} out of range in {text[:40]!r}")
            out.append(value)
        elif u4 is not None or u8 is not None:
            out += _rune(int(u4 or u8, 16), text)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        else:
            raise ValueError(f"unknown escape \\{ch} in {text[:40]!r}")
    if covered != len(body):
        raise ValueError(f"unterminated escape in {text[:40]!r}")
    return out.decode("utf-8", "replace")


def _utf8(s: str) -> bytes:
    """UTF-8 bytes of `s`; a surrogate-escaped byte (U+DC80..U+DCFF) becomes that byte again.

    Callers decode raw input with errors="surrogateescape" so that string offsets stay byte
    offsets; this undoes it exactly.
    """
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        out = bytearray()
        for ch in s:
            code = ord(ch)
            out += (
                bytes((code - 0xDC00,)) if 0xDC80 <= code <= 0xDCFF else ch.encode("utf-8", "surrogatepass")
            )
        return bytes(out)


def _clean(s: str) -> str:
    """`s` without surrogates: escaped bytes that are not UTF-8 become U+FFFD."""
    return s if s.isascii() else _utf8(s).decode("utf-8", "replace")


def _rune(code: int, text: str) -> bytes:
    # Go rejects surrogate halves and values past U+10FFFF in \u and \U escapes.
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"invalid Unicode escape U+{code:X} in {text[:40]!r}")
    return chr(code).encode("utf-8")


def parse_labels(text: str, pos: int) -> tuple[dict[str, str], int]:
    """Parse the label set starting at `text[pos] == "{"`.

    Decode input bytes with errors="surrogateescape" to keep indexes equal to byte offsets;
    the labels returned never contain surrogates.

    Returns the labels and the index just after the closing `}`. Raises LabelSyntaxError
    (a ValueError) with the offending index.
    """
    if pos >= len(text) or text[pos] != "{":
        raise LabelSyntaxError('expected "{" starting a label set', pos)
    labels: dict[str, str] = {}
    i = _skip_spaces(text, pos + 1)
    if i < len(text) and text[i] == "}":
        return labels, i + 1
    while True:
        key, i = _token(text, i, "label key")
        if i >= len(text) or text[i] != ":":
            raise LabelSyntaxError('expected ":" after a label key', i)
        value, i = _token(text, _skip_spaces(text, i + 1), "label value")
        labels[key] = value
        i = _skip_spaces(text, i)
        if i < len(text) and text[i] == "}":
            return labels, i + 1
        if i >= len(text) or text[i] != ",":
            raise LabelSyntaxError('expected "," or "}" after a label value', i)
        i = _skip_spaces(text, i + 1)


def _skip_spaces(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    return i


def _token(text: str, i: int, what: str) -> tuple[str, int]:
    if i < len(text) and text[i] == '"':
        m = _QUOTED.match(text, i)
        if m is None:
            raise LabelSyntaxError(f"unterminated quoted {what}", i)
        try:
            return unquote(m.group()), m.end()
        except ValueError as e:
            raise LabelSyntaxError(f"bad quoted {what}: {e}", i) from None
    m = _BARE.match(text, i)
    assert m is not None  # the pattern matches the empty string
    return _clean(m.group()), m.end()
