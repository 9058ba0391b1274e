"""The bash a CAVEdeployment env file is written in, as tokens: words (with their quoting and expansions),
operators and newlines, grouped into simple commands. Nothing is expanded or run here (compiler/importenv/
envfile.py evaluates the tokens the way `source` would).

Lexical errors (an unterminated quote, ${, $(, array or backtick; a here-document) are `UserError`s at the
file's line and column.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from compiler.errors import Problem, UserError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?(\+?)=(.*)", re.S)
_OPERATORS = ("&&", "||", ";;", "<<", ">>", "&>", ">&", "<&", "(", ")", ";", "&", "|", "<", ">")
_SEPARATORS = {"\n", ";", "&", "&&", "||", "|", ";;"}
_REDIRECTS = {"<", ">", ">>", "&>", ">&", "<&"}
DECLARE = {"export", "declare", "typeset", "readonly", "local"}
OPENERS = {"if", "case", "do", "{"}
CLOSERS = {"fi", "esac", "done", "}"}
LOOPS = {"for", "while", "until", "select"}
RESERVED = OPENERS | CLOSERS | LOOPS | {"then", "else", "elif", "function", "in", "!"}


@dataclass(frozen=True)
class Lit:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Param:
    name: str
    index: str | None
    op: str  # "" or one of :- - := = :+ + :? ?
    arg: tuple[Part, ...]
    quoted: bool
    length: bool
    start: int


@dataclass(frozen=True)
class CmdSub:
    raw: str
    tokens: tuple[Token, ...]
    quoted: bool
    start: int


@dataclass(frozen=True)
class Special:
    raw: str
    quoted: bool


Part = Lit | Param | CmdSub | Special


@dataclass(frozen=True)
class Word:
    parts: tuple[Part, ...]
    start: int
    raw: str


@dataclass(frozen=True)
class ArrayWord:
    name: str
    append: bool
    elements: tuple[Word, ...]
    start: int


@dataclass(frozen=True)
class Op:
    text: str
    start: int


Token = Word | ArrayWord | Op


MAX_NESTING = 32  # expansions inside expansions; CAVEdeployment's env files nest two at most


class Lexer:
    """Tokens of a bash text: words (with their quoting and expansions), operators and newlines."""

    def __init__(self, text: str, display: str, base: int = 0, where: Lexer | None = None) -> None:
        self.text = text
        self.display = display
        self.base = base  # offset of `text` inside the outer file (backtick bodies are lexed separately)
        self.outer = where
        self._line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self._depth: int = where._depth if where is not None else 0  # expansions open around the current position

    def position(self, i: int) -> tuple[int, int]:
        if self.outer is not None:
            return self.outer.position(self.base)
        line = bisect_right(self._line_starts, i)
        return line, i - self._line_starts[line - 1] + 1

    def error(self, i: int, message: str) -> UserError:
        line, col = self.position(i)
        return UserError([Problem(self.display, line, col, message)])

    # ------------------------------------------------------------------ token stream

    def tokens(self, i: int = 0, in_sub: bool = False) -> tuple[list[Token], int]:
        text, n = self.text, len(self.text)
        out: list[Token] = []
        depth = 0
        start = i
        while i < n:
            c = text[i]
            if c in " \t\r":
                i += 1
            elif c == "\\" and text[i + 1:i + 2] == "\n":
                i += 2
            elif c == "#":
                while i < n and text[i] != "\n":
                    i += 1
            elif c == "\n":
                out.append(Op("\n", i))
                i += 1
            elif c == ")" and in_sub and depth == 0:
                return out, i + 1
            elif c in "();&|<>" or (c.isdigit() and re.match(r"\d+[<>]", text[i:i + 12])):
                while text[i].isdigit():
                    i += 1
                op = next(o for o in _OPERATORS if text.startswith(o, i))
                if op == "<<":
                    raise self.error(i, "here-documents (<<) are not supported in an env file "
                                        "(set the variable with a plain assignment)")
                depth += (op == "(") - (op == ")")
                out.append(Op(op, i))
                i += len(op)
            else:
                word, i = self._word(i)
                out.append(word)
        if in_sub:
            raise self.error(start - 2, "unterminated command substitution $( (close it with ')')")
        return out, i

    def _word(self, i: int, stop: str = "", opened_at: int = 0) -> tuple[Word | ArrayWord, int]:
        """One shell word from i; with `stop` (inside ${...} opened at `opened_at`), read up to that character."""
        text, n = self.text, len(self.text)
        start = i
        parts: list[Part] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                parts.append(Lit("".join(buf), False))
                buf.clear()

        while i < n:
            c = text[i]
            if stop:
                if c == stop:
                    break
            elif c in " \t\r\n;&|<>()":
                if c == "(" and not parts and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\+?=", "".join(buf)):
                    return self._array("".join(buf), start, i)
                break
            if c == "\\":
                nxt = text[i + 1:i + 2]
                if nxt == "\n":
                    i += 2
                    continue
                flush()
                parts.append(Lit(nxt, True))
                i += 2
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise self.error(i, "unterminated single quote (add the closing ')")
                flush()
                parts.append(Lit(text[i + 1:end], True))
                i = end + 1
            elif c == '"':
                flush()
                quoted, i = self._double(i)
                parts.extend(quoted)
            elif c == "$":
                flush()
                part, i = self._dollar(i, quoted=False)
                parts.append(part)
            elif c == "`":
                flush()
                sub, i = self._backtick(i, quoted=False)
                parts.append(sub)
            else:
                buf.append(c)
                i += 1
        if stop and i >= n:
            raise self.error(opened_at, "unterminated ${ (close it with '}')")
        flush()
        return Word(tuple(parts), start, text[start:i]), i

    def _array(self, head: str, start: int, i: int) -> tuple[ArrayWord, int]:
        text, n = self.text, len(self.text)
        open_at = i
        i += 1
        elements: list[Word] = []
        while True:
            while i < n and (text[i] in " \t\r\n" or text.startswith("\\\n", i)):
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise self.error(open_at, "unterminated array (close it with ')')")
            if text[i] == "#":
                while i < n and text[i] != "\n":
                    i += 1
                continue
            if text[i] == ")":
                break
            if text[i] in ";&|<>(":
                raise self.error(i, f"unexpected {text[i]!r} inside an array (quote it)")
            word, i = self._word(i)
            assert isinstance(word, Word)
            elements.append(word)
        name = head.rstrip("=").rstrip("+")
        return ArrayWord(name, head.endswith("+="), tuple(elements), start), i + 1

    def _double(self, i: int) -> tuple[list[Part], int]:
        text, n = self.text, len(self.text)
        open_at = i
        i += 1
        parts: list[Part] = []
        buf: list[str] = []

        def flush(force: bool = False) -> None:
            if buf or force:
                parts.append(Lit("".join(buf), True))
                buf.clear()

        while i < n:
            c = text[i]
            if c == '"':
                flush(force=not parts)
                return parts, i + 1
            if c == "\\" and text[i + 1:i + 2] in ('"', "\\", "$", "`", "\n"):
                if text[i + 1] != "\n":
                    buf.append(text[i + 1])
                i += 2
            elif c == "$":
                flush()
                part, i = self._dollar(i, quoted=True)
                parts.append(part)
            elif c == "`":
                flush()
                sub, i = self._backtick(i, quoted=True)
                parts.append(sub)
            else:
                buf.append(c)
                i += 1
        raise self.error(open_at, 'unterminated double quote (add the closing ")')

    def _dollar(self, i: int, quoted: bool) -> tuple[Part, int]:
        """A `$...` expansion at i; nested ones (`$(… $(…) …)`, `${a:-${b}}`) at most MAX_NESTING deep."""
        if self._depth >= MAX_NESTING:
            raise self.error(i, f"expansions nested deeper than {MAX_NESTING} levels ($(...), ${{...}}, `...`): "
                                "not an env file CAVEdeployment writes (simplify this line)")
        self._depth += 1
        try:
            return self._expansion(i, quoted)
        finally:
            self._depth -= 1

    def _expansion(self, i: int, quoted: bool) -> tuple[Part, int]:
        text = self.text
        nxt = text[i + 1:i + 2]
        if text.startswith("$((", i):
            depth, j = 0, i + 1
            while j < len(text):
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    return Special(text[i:j], quoted), j
            raise self.error(i, "unterminated arithmetic $(( (close it with '))')")
        if nxt == "(":
            tokens, j = self.tokens(i + 2, in_sub=True)
            return CmdSub(text[i + 2:j - 1], tuple(tokens), quoted, i), j
        if nxt == "{":
            return self._brace(i, quoted)
        if nxt == "'" and not quoted:
            return self._ansi_c(i)
        m = NAME_RE.match(text, i + 1)
        if m:
            return Param(m.group(), None, "", (), quoted, False, i), m.end()
        if nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            return Special(text[i:i + 2], quoted), i + 2
        return Lit("$", quoted), i + 1

    def _brace(self, i: int, quoted: bool) -> tuple[Part, int]:
        text = self.text
        j = i + 2
        length = text[j:j + 1] == "#" and text[j + 1:j + 2] != "}"
        j += length
        m = NAME_RE.match(text, j)
        if not m:
            if text[j:j + 1] in ("!", "@", "*", "?", "$", "-", "#") or text[j:j + 1].isdigit():
                _, end = self._word(j, stop="}", opened_at=i)
                return Special(text[i:end + 1], quoted), end + 1
            raise self.error(i, "bad substitution: expected a variable name after ${")
        name, j = m.group(), m.end()
        index = None
        if text[j:j + 1] == "[":
            close = text.find("]", j)
            if close < 0:
                raise self.error(j, "unterminated array index (add ']')")
            index, j = text[j + 1:close], close + 1
        if text[j:j + 1] == "}":
            return Param(name, index, "", (), quoted, length, i), j + 1
        op = next((o for o in (":-", ":=", ":+", ":?", "-", "=", "+", "?") if text.startswith(o, j)), None)
        word, end = self._word(j + len(op or ""), stop="}", opened_at=i)
        if op is None or length or end >= len(text):
            return Special(text[i:end + 1], quoted), end + 1
        assert isinstance(word, Word)
        return Param(name, index, op, word.parts, quoted, False, i), end + 1

    def _ansi_c(self, i: int) -> tuple[Lit, int]:
        text = self.text
        j = i + 2
        out: list[str] = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "e": "\x1b", "a": "\a"}
        while j < len(text):
            c = text[j]
            if c == "'":
                return Lit("".join(out), True), j + 1
            if c == "\\" and j + 1 < len(text):
                out.append(escapes.get(text[j + 1], "\\" + text[j + 1]))
                j += 2
            else:
                out.append(c)
                j += 1
        raise self.error(i, "unterminated $'...' quote (add the closing ')")

    def _backtick(self, i: int, quoted: bool) -> tuple[CmdSub, int]:
        if self._depth >= MAX_NESTING:
            raise self.error(i, f"expansions nested deeper than {MAX_NESTING} levels ($(...), ${{...}}, `...`): "
                                "not an env file CAVEdeployment writes (simplify this line)")
        self._depth += 1
        try:
            return self._backtick_body(i, quoted)
        finally:
            self._depth -= 1

    def _backtick_body(self, i: int, quoted: bool) -> tuple[CmdSub, int]:
        text = self.text
        j = i + 1
        body: list[str] = []
        while j < len(text):
            c = text[j]
            if c == "`":
                inner = "".join(body)
                tokens, _ = Lexer(inner, self.display, base=i, where=self).tokens()
                return CmdSub(inner, tuple(tokens), quoted, i), j + 1
            if c == "\\" and text[j + 1:j + 2] in ("`", "\\", "$"):
                body.append(text[j + 1])
                j += 2
            else:
                body.append(c)
                j += 1
        raise self.error(i, "unterminated backtick command substitution (add the closing `)")


# --------------------------------------------------------------------------- commands


@dataclass
class Command:
    tokens: list[Token]
    start: int

    def words(self) -> list[Word | ArrayWord]:
        """The command's words without redirections (and their targets)."""
        out: list[Word | ArrayWord] = []
        skip = False
        for tok in self.tokens:
            if isinstance(tok, Op):
                skip = tok.text in _REDIRECTS
            elif skip:
                skip = False
            else:
                out.append(tok)
        return out


def commands(tokens: list[Token]) -> list[Command]:
    out: list[Command] = []
    current: list[Token] = []
    for tok in tokens:
        if isinstance(tok, Op) and tok.text in _SEPARATORS:
            if current:
                out.append(Command(current, _start(current[0])))
                current = []
        else:
            current.append(tok)
    if current:
        out.append(Command(current, _start(current[0])))
    return out


def _start(tok: Token) -> int:
    return tok.start


def function_prefix(tokens: list[Token]) -> int:
    """How many tokens of `name ()` or `function name [()]` start a function definition (0: none)."""
    if len(tokens) >= 3 and isinstance(tokens[0], Word) and bare(tokens[0]) != "function" \
            and isinstance(tokens[1], Op) and tokens[1].text == "(" and isinstance(tokens[2], Op) \
            and tokens[2].text == ")":
        return 3
    if tokens and bare(tokens[0]) == "function":
        has_parens = len(tokens) >= 4 and isinstance(tokens[2], Op) and tokens[2].text == "("
        return 4 if has_parens else min(2, len(tokens))
    return 0


def bare(word: Word | ArrayWord | Op) -> str | None:
    """The word's text when it is one unquoted literal (a keyword, a command name), else None."""
    if isinstance(word, Word) and len(word.parts) == 1 and isinstance(word.parts[0], Lit) \
            and not word.parts[0].quoted:
        return word.parts[0].text
    return None

