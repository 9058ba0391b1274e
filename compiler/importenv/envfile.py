"""Read a CAVEdeployment bash env file the way `source` would, without running anything.

Supported: `export X=...`, `X=...`, `X+=...`, `declare`/`readonly`, single/double/`$'...'` quoting and
escapes, `$VAR`/`${VAR}` (with `:-`, `-`, `:=`, `=`, `:+`, `+`, `[@]`, `[N]`, `${#VAR}`) resolved in order,
bash arrays `X=(...)`/`X+=(...)`/`X[N]=...`, comments and line continuations. Command substitutions
(`$(...)`, backticks) are recognised and kept as `Computed` values: a `cat FILE` as a file read, `gcloud` or
`kubectl` as a live look-up. Compound commands (`for`, `if`, `case`, `{ }`, subshells, functions) are skipped
and reported. A value that expands a variable records it in `refs`, so callers can tell secret-derived
values apart and never copy them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from compiler.errors import Problem, UserError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?(\+?)=(.*)", re.S)
_OPERATORS = ("&&", "||", ";;", "<<", ">>", "&>", ">&", "<&", "(", ")", ";", "&", "|", "<", ">")
_SEPARATORS = {"\n", ";", "&", "&&", "||", "|", ";;"}
_REDIRECTS = {"<", ">", ">>", "&>", ">&", "<&"}
_DECLARE = {"export", "declare", "typeset", "readonly", "local"}
_OPENERS = {"if", "case", "do", "{"}
_CLOSERS = {"fi", "esac", "done", "}"}
_LOOPS = {"for", "while", "until", "select"}
_RESERVED = _OPENERS | _CLOSERS | _LOOPS | {"then", "else", "elif", "function", "in", "!"}
# Variables bash sets itself: their value depends on where and how the file is sourced.
SHELL_VARIABLES = {"PWD", "OLDPWD", "HOME", "USER", "BASH_SOURCE", "RANDOM", "SECONDS", "HOSTNAME", "PPID",
                   "UID", "EUID", "SHELL", "PATH", "LINENO", "BASHPID", "FUNCNAME"}
LIVE_COMMANDS = {"gcloud", "kubectl", "gsutil", "curl", "helm"}


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Computed:
    """A value bash would compute while sourcing the file; import-env never computes it."""

    how: Literal["live", "file", "command", "shell"]
    command: str  # a short, value-free description: `gcloud redis instances describe`, `cat`, `$PWD`
    path: str | None = None  # the file a `cat` reads (how == "file")


Value = str | tuple[str, ...] | Computed


@dataclass(frozen=True)
class Var:
    """A variable after the file is read: its value, what it was built from, and where it was last set."""

    name: str
    value: Value
    refs: frozenset[str]  # every variable expanded into the value, transitively
    line: int
    col: int
    origin: str  # "file", "defaults.sh", "convert_variables.sh", "env_config.sh"
    lines: tuple[int, ...] = ()  # every line of the file that assigned it, in order

    def text(self) -> str | None:
        """The value as bash would print `$NAME` (first element of an array); None when computed."""
        if isinstance(self.value, Computed):
            return None
        if isinstance(self.value, tuple):
            return self.value[0] if self.value else ""
        return self.value


@dataclass(frozen=True)
class Note:
    """Something the reader noticed: a skipped block, an ignored command, an unset reference, ..."""

    kind: Literal["block", "command", "prefix", "source", "unset-ref", "misassigned", "unset"]
    line: int
    col: int
    what: str  # value-free description (a command name, a variable name)
    names: tuple[str, ...] = ()  # variables assigned inside a skipped block / the misassigned name


# --------------------------------------------------------------------------- tokens


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


class _Lexer:
    """Tokens of a bash text: words (with their quoting and expansions), operators and newlines."""

    def __init__(self, text: str, display: str, base: int = 0, where: _Lexer | None = None) -> None:
        self.text = text
        self.display = display
        self.base = base  # offset of `text` inside the outer file (backtick bodies are lexed separately)
        self.outer = where
        self._line_starts = [0, *(m.end() for m in re.finditer("\n", text))]

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
        text = self.text
        j = i + 1
        body: list[str] = []
        while j < len(text):
            c = text[j]
            if c == "`":
                inner = "".join(body)
                tokens, _ = _Lexer(inner, self.display, base=i, where=self).tokens()
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
class _Command:
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


def _commands(tokens: list[Token]) -> list[_Command]:
    out: list[_Command] = []
    current: list[Token] = []
    for tok in tokens:
        if isinstance(tok, Op) and tok.text in _SEPARATORS:
            if current:
                out.append(_Command(current, _start(current[0])))
                current = []
        else:
            current.append(tok)
    if current:
        out.append(_Command(current, _start(current[0])))
    return out


def _start(tok: Token) -> int:
    return tok.start


def _function_prefix(tokens: list[Token]) -> int:
    """How many tokens of `name ()` or `function name [()]` start a function definition (0: none)."""
    if len(tokens) >= 3 and isinstance(tokens[0], Word) and _bare(tokens[0]) != "function" \
            and isinstance(tokens[1], Op) and tokens[1].text == "(" and isinstance(tokens[2], Op) \
            and tokens[2].text == ")":
        return 3
    if tokens and _bare(tokens[0]) == "function":
        has_parens = len(tokens) >= 4 and isinstance(tokens[2], Op) and tokens[2].text == "("
        return 4 if has_parens else min(2, len(tokens))
    return 0


def _bare(word: Word | ArrayWord | Op) -> str | None:
    """The word's text when it is one unquoted literal (a keyword, a command name), else None."""
    if isinstance(word, Word) and len(word.parts) == 1 and isinstance(word.parts[0], Lit) \
            and not word.parts[0].quoted:
        return word.parts[0].text
    return None


# --------------------------------------------------------------------------- evaluation


@dataclass
class EnvFile:
    """The variables a file defines when sourced, plus what the reader noticed on the way."""

    display: str
    variables: dict[str, Var] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    # `NAME = value` lines: bash sets nothing (P17); the value they meant, for the caller to judge.
    misassigned: dict[str, Var] = field(default_factory=dict)
    assigned_in_file: int = 0

    def get(self, name: str) -> Var | None:
        return self.variables.get(name)

    def set(self, name: str, value: Value, origin: str, refs: frozenset[str] = frozenset(),
            line: int = 0, col: int = 0) -> None:
        """Assign outside the file (defaults.sh before it, convert_variables.sh after it)."""
        old = self.variables.get(name)
        self.variables[name] = Var(name, value, refs, line, col, origin, old.lines if old else ())


class _Evaluator:
    def __init__(self, lexer: _Lexer, env: EnvFile) -> None:
        self.lexer = lexer
        self.env = env

    # ------------------------------------------------------------------ expansion

    def expand(self, parts: tuple[Part, ...]) -> tuple[Value, frozenset[str]]:
        """A word's value as a string (or a Computed value) and the variables it expanded."""
        out: list[str] = []
        refs: set[str] = set()
        computed: list[Computed] = []
        for part in parts:
            if isinstance(part, Lit):
                out.append(part.text)
            elif isinstance(part, Param):
                value, used = self._param(part)
                refs |= used
                if isinstance(value, Computed):
                    computed.append(value)
                else:
                    out.append(value)
            elif isinstance(part, CmdSub):
                computed.append(self._command_value(part))
            else:
                computed.append(Computed("shell", "shell expansion"))
        if computed:
            whole = len([p for p in parts if not (isinstance(p, Lit) and p.text == "")]) == 1
            return (computed[0] if whole else Computed("shell", f"built from {computed[0].command}",
                                                       computed[0].path)), frozenset(refs)
        return "".join(out), frozenset(refs)

    def fields(self, word: Word) -> tuple[list[str] | Computed, frozenset[str]]:
        """A word in an array: `"${A[@]}"` gives the elements, an unquoted expansion is split on blanks."""
        if len(word.parts) == 1 and isinstance(word.parts[0], Param) and word.parts[0].index in ("@", "*"):
            part = word.parts[0]
            var = self.env.get(part.name)
            if var is not None and isinstance(var.value, tuple):
                return list(var.value), frozenset({part.name}) | var.refs
        value, refs = self.expand(word.parts)
        if isinstance(value, Computed):
            return value, refs
        assert isinstance(value, str)
        unquoted = any(isinstance(p, Param | CmdSub) and not p.quoted for p in word.parts)
        return (value.split() if unquoted else [value]), refs

    def _param(self, p: Param) -> tuple[str | Computed, frozenset[str]]:
        if p.name in SHELL_VARIABLES:
            return Computed("shell", f"${p.name}"), frozenset()
        var = self.env.get(p.name)
        refs = frozenset({p.name}) | (var.refs if var else frozenset())
        value: str | Computed | None
        if var is None:
            value = None
        elif isinstance(var.value, tuple):
            if p.index in ("@", "*"):
                value = str(len(var.value)) if p.length else " ".join(var.value)
                return value, refs
            k = int(p.index) if p.index and p.index.isdigit() else 0
            value = var.value[k] if k < len(var.value) else None
        elif p.index not in (None, "0", "@", "*"):
            value = None
        else:
            value = var.value
        if p.length:
            return (value if isinstance(value, Computed) else str(len(value or ""))), refs
        empty = value is None or value == ""
        unset = value is None
        if p.op in (":-", "-") and (empty if p.op == ":-" else unset):
            default, more = self.expand(p.arg)
            return _scalar(default), refs | more
        if p.op in (":=", "=") and (empty if p.op == ":=" else unset):
            default, more = self.expand(p.arg)
            line, col = self.lexer.position(p.start)
            self._assign(p.name, None, False, _scalar(default), more, line, col)
            return _scalar(default), refs | more
        if p.op in (":+", "+"):
            if empty if p.op == ":+" else unset:
                return "", refs
            alt, more = self.expand(p.arg)
            return _scalar(alt), refs | more
        if value is None:
            line, col = self.lexer.position(p.start)
            self.env.notes.append(Note("unset-ref", line, col, p.name))
            return "", refs
        return value, refs

    def _command_value(self, sub: CmdSub) -> Computed:
        commands = _commands(list(sub.tokens))
        words = commands[0].words() if commands else []
        names = [_bare(w) for w in words]
        if names and names[0] == "cat":
            args = [w for w, n in zip(words[1:], names[1:], strict=True) if not (n or "").startswith("-")]
            if len(args) == 1 and isinstance(args[0], Word):
                path, _ = self.expand(args[0].parts)
                if isinstance(path, str):
                    return Computed("file", "cat", path)
            return Computed("command", "cat")
        description = " ".join(n for n in names[:4] if n and re.fullmatch(r"[a-z][a-z0-9-]*", n)) or "a command"
        how: Literal["live", "command"] = "live" if names and names[0] in LIVE_COMMANDS else "command"
        return Computed(how, description)

    # ------------------------------------------------------------------ assignment

    def _assign(self, name: str, index: str | None, append: bool, value: Value, refs: frozenset[str],
                line: int, col: int) -> None:
        old = self.env.get(name)
        if index is not None and not isinstance(value, tuple):
            elements = list(old.value) if old and isinstance(old.value, tuple) else (
                [old.value] if old and isinstance(old.value, str) else [])
            k = int(index) if index.isdigit() else len(elements)
            if isinstance(value, Computed):
                new: Value = value
            else:
                elements.extend([""] * (k + 1 - len(elements)))
                elements[k] = (elements[k] + value) if append else value
                new = tuple(elements)
        elif append and old is not None and not isinstance(old.value, Computed) and not isinstance(value, Computed):
            if isinstance(value, tuple):
                base = old.value if isinstance(old.value, tuple) else (old.value,)
                new = base + value
            elif isinstance(old.value, tuple):
                new = ((old.value[0] if old.value else "") + value, *old.value[1:])
            else:
                new = old.value + value
        elif isinstance(value, str) and old is not None and isinstance(old.value, tuple) and not append:
            new = (value, *old.value[1:])  # bash: X=v on an array sets element 0
        else:
            new = value
        all_refs = refs | (old.refs if append and old else frozenset())
        lines = (*(old.lines if old else ()), line)
        self.env.variables[name] = Var(name, new, all_refs, line, col, "file", lines)
        self.env.assigned_in_file += 1

    def assignment_word(self, word: Word | ArrayWord) -> bool:
        """Perform `word` if it is an assignment (NAME=..., NAME+=..., NAME=(...)); False when it is not."""
        line, col = self.lexer.position(word.start)
        if isinstance(word, ArrayWord):
            values: list[str] = []
            refs: frozenset[str] = frozenset()
            computed: Computed | None = None
            for element in word.elements:
                got, more = self.fields(element)
                refs |= more
                if isinstance(got, Computed):
                    computed = got
                else:
                    values.extend(got)
            self._assign(word.name, None, word.append, computed or tuple(values), refs, line, col)
            return True
        first = word.parts[0] if word.parts else None
        if not isinstance(first, Lit) or first.quoted:
            return False
        m = _ASSIGN_RE.fullmatch(first.text)
        if not m:
            return False
        name, index, plus, rest = m.groups()
        parts = ((Lit(rest, False),) if rest else ()) + word.parts[1:]
        value, refs = self.expand(parts)
        self._assign(name, index, bool(plus), value, refs, line, col)
        return True

    # ------------------------------------------------------------------ commands

    def run(self, tokens: list[Token]) -> None:
        commands = _commands(tokens)
        k = 0
        while k < len(commands):
            cmd = commands[k]
            first = cmd.tokens[0]
            head = _bare(first)
            if (isinstance(first, Op) and first.text == "(") or head in _OPENERS | _LOOPS | {"function"} \
                    or _function_prefix(cmd.tokens):
                k = self._skip_block(commands, k)
                continue
            if head in _CLOSERS | {"then", "else", "elif"}:
                raise self.lexer.error(cmd.start, f"unexpected `{head}` (there is no if/for/while/case/{{ "
                                                  "block open here)")
            self._simple(cmd)
            k += 1

    def _skip_block(self, commands: list[_Command], k: int) -> int:
        """Skip the compound command starting at commands[k]; note the variables it would assign."""
        opener = commands[k]
        first = opener.tokens[0]
        subshell = isinstance(first, Op)
        depth = parens = 0
        opened = False
        names: list[str] = []
        j = k
        while j < len(commands):
            tokens = commands[j].tokens
            if j == k:
                tokens = tokens[_function_prefix(tokens):]
            if subshell:
                parens += sum((t.text == "(") - (t.text == ")") for t in tokens if isinstance(t, Op))
            lead = 0
            while lead < len(tokens) and (word := _bare(tokens[lead])) in _RESERVED:
                depth += (word in _OPENERS) - (word in _CLOSERS)
                opened = opened or word in _OPENERS
                lead += 1
            names.extend(self._assigned_names(tokens[lead:]))
            j += 1
            if (subshell and parens <= 0) or (not subshell and opened and depth <= 0):
                break
        else:
            kind = "(" if subshell else (_bare(first) or "{")
            closer = {"if": "fi", "case": "esac", "(": ")"}.get(kind, "done" if kind in _LOOPS else "}")
            raise self.lexer.error(opener.start, f"`{kind}` block is never closed (add the matching `{closer}`)")
        line, col = self.lexer.position(opener.start)
        kind = "(" if subshell else ("function" if _function_prefix(opener.tokens) else (_bare(first) or "block"))
        self.env.notes.append(Note("block", line, col, kind, tuple(dict.fromkeys(names))))
        return j

    def _assigned_names(self, tokens: list[Token]) -> Iterator[str]:
        words = [t for t in tokens if not isinstance(t, Op)]
        if words and _bare(words[0]) in _DECLARE:
            words = words[1:]
        for w in words:
            if isinstance(w, ArrayWord):
                yield w.name
            elif w.parts and isinstance(w.parts[0], Lit) and not w.parts[0].quoted:
                m = _ASSIGN_RE.fullmatch(w.parts[0].text)
                if m:
                    yield m.group(1)
                else:
                    break
            else:
                break

    def _simple(self, cmd: _Command) -> None:
        words = cmd.words()
        k = 0
        while k < len(words) and self._is_assignment(words[k]):
            k += 1
        if k == len(words):
            for w in words:
                self.assignment_word(w)
            return
        head = _bare(words[k])
        line, col = self.lexer.position(words[k].start)
        if k == 0 and head is not None and NAME_RE.fullmatch(head) and len(words) > 1 and _bare(words[1]) == "=":
            self._misassigned(words, 0)
            return
        if k > 0:
            # NAME=value word ...: bash runs `word` with NAME set for it alone and keeps none of the assignments.
            # Usually an unquoted space in a value; the word may be part of a secret, so it is not recorded.
            names = tuple(n for w in words[:k] for n in self._assigned_names([w]))
            line, col = self.lexer.position(words[0].start)
            self.env.notes.append(Note("prefix", line, col, "", names))
            return
        if head in _DECLARE:
            args = words[1:]
            i = 0
            while i < len(args):
                word = args[i]
                text = _bare(word)
                if text is not None and text.startswith("-"):
                    i += 1
                elif self._is_assignment(word):
                    self.assignment_word(word)
                    i += 1
                elif text is not None and NAME_RE.fullmatch(text) and i + 1 < len(args) and _bare(args[i + 1]) == "=":
                    self._misassigned(args, i)
                    i += 3
                else:
                    i += 1
            return
        if head == "unset":
            for word in words[1:]:
                text = _bare(word)
                if text and NAME_RE.fullmatch(text):
                    self.env.variables.pop(text, None)
                    self.env.notes.append(Note("unset", line, col, text))
            return
        if head in ("source", "."):
            self.env.notes.append(Note("source", line, col, head))
            return
        self.env.notes.append(Note("command", line, col, head if head and NAME_RE.fullmatch(head) else "a command"))

    def _is_assignment(self, word: Word | ArrayWord) -> bool:
        if isinstance(word, ArrayWord):
            return True
        first = word.parts[0] if word.parts else None
        return isinstance(first, Lit) and not first.quoted and _ASSIGN_RE.fullmatch(first.text) is not None

    def _misassigned(self, words: list[Word | ArrayWord], i: int) -> None:
        """`NAME = value`: bash sets nothing (P17); keep the intended value aside for the caller to judge."""
        name = _bare(words[i]) or ""
        line, col = self.lexer.position(words[i].start)
        intended: Value = ""
        refs: frozenset[str] = frozenset()
        if i + 2 < len(words) and isinstance(words[i + 2], Word):
            word = words[i + 2]
            assert isinstance(word, Word)
            intended, refs = self.expand(word.parts)
        self.env.notes.append(Note("misassigned", line, col, name, (name,)))
        self.env.misassigned[name] = Var(name, intended, refs, line, col, "file", (line,))


def _scalar(value: Value) -> str:
    if isinstance(value, tuple):
        return value[0] if value else ""
    if isinstance(value, Computed):
        return ""
    return value


def parse(text: str, display: str, env: EnvFile | None = None) -> EnvFile:
    """Read `text` (the content of file `display`) as bash would source it, on top of `env`'s variables."""
    env = env or EnvFile(display)
    env.display = display
    lexer = _Lexer(text.replace("\r\n", "\n"), display)
    tokens, _ = lexer.tokens()
    _Evaluator(lexer, env).run(tokens)
    return env
