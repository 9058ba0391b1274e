"""Read a CAVEdeployment bash env file the way `source` would, without running anything.

Supported: `export X=...`, `X=...`, `X+=...`, `declare`/`readonly`, single/double/`$'...'` quoting and
escapes, `$VAR`/`${VAR}` (with `:-`, `-`, `:=`, `=`, `:+`, `+`, `[@]`, `[N]`, `${#VAR}`) resolved in order,
bash arrays `X=(...)`/`X+=(...)`/`X[N]=...`, comments and line continuations. Command substitutions
(`$(...)`, backticks) are recognised and kept as `Computed` values: a `cat FILE` as a file read, `gcloud` or
`kubectl` as a live look-up. Compound commands (`for`, `if`, `case`, `{ }`, subshells, functions) are skipped
and reported. A value that expands a variable records it in `refs`, so callers can tell secret-derived
values apart and never copy them.

The tokens come from compiler/importenv/shell.py; this module holds the variables' model (`Var`,
`Computed`, `Note`, `EnvFile`) and the evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from compiler.importenv import shell
from compiler.importenv.shell import NAME_RE, ArrayWord, CmdSub, Lit, Op, Param, Part, Token, Word

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


# --------------------------------------------------------------------------- evaluation


@dataclass
class EnvFile:
    """The variables a file defines when sourced, plus what the reader noticed on the way."""

    display: str
    variables: dict[str, Var] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    # `NAME = value` lines (bash runs NAME as a command): the value they meant, for the caller to judge.
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
    def __init__(self, lexer: shell.Lexer, env: EnvFile) -> None:
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
        commands = shell.commands(list(sub.tokens))
        words = commands[0].words() if commands else []
        names = [shell.bare(w) for w in words]
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
        m = shell.ASSIGN_RE.fullmatch(first.text)
        if not m:
            return False
        name, index, plus, rest = m.groups()
        parts = ((Lit(rest, False),) if rest else ()) + word.parts[1:]
        value, refs = self.expand(parts)
        self._assign(name, index, bool(plus), value, refs, line, col)
        return True

    # ------------------------------------------------------------------ commands

    def run(self, tokens: list[Token]) -> None:
        commands = shell.commands(tokens)
        k = 0
        while k < len(commands):
            cmd = commands[k]
            first = cmd.tokens[0]
            head = shell.bare(first)
            if (isinstance(first, Op) and first.text == "(") or head in shell.OPENERS | shell.LOOPS | {"function"} \
                    or shell.function_prefix(cmd.tokens):
                k = self._skip_block(commands, k)
                continue
            if head in shell.CLOSERS | {"then", "else", "elif"}:
                raise self.lexer.error(cmd.start, f"unexpected `{head}` (there is no if/for/while/case/{{ "
                                                  "block open here)")
            self._simple(cmd)
            k += 1

    def _skip_block(self, commands: list[shell.Command], k: int) -> int:
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
                tokens = tokens[shell.function_prefix(tokens):]
            if subshell:
                parens += sum((t.text == "(") - (t.text == ")") for t in tokens if isinstance(t, Op))
            lead = 0
            while lead < len(tokens) and (word := shell.bare(tokens[lead])) in shell.RESERVED:
                depth += (word in shell.OPENERS) - (word in shell.CLOSERS)
                opened = opened or word in shell.OPENERS
                lead += 1
            names.extend(self._assigned_names(tokens[lead:]))
            j += 1
            if (subshell and parens <= 0) or (not subshell and opened and depth <= 0):
                break
        else:
            kind = "(" if subshell else (shell.bare(first) or "{")
            closer = {"if": "fi", "case": "esac", "(": ")"}.get(kind, "done" if kind in shell.LOOPS else "}")
            raise self.lexer.error(opener.start, f"`{kind}` block is never closed (add the matching `{closer}`)")
        line, col = self.lexer.position(opener.start)
        kind = "(" if subshell else ("function" if shell.function_prefix(opener.tokens)
                                     else (shell.bare(first) or "block"))
        self.env.notes.append(Note("block", line, col, kind, tuple(dict.fromkeys(names))))
        return j

    def _assigned_names(self, tokens: list[Token]) -> Iterator[str]:
        words = [t for t in tokens if not isinstance(t, Op)]
        if words and shell.bare(words[0]) in shell.DECLARE:
            words = words[1:]
        for w in words:
            if isinstance(w, ArrayWord):
                yield w.name
            elif w.parts and isinstance(w.parts[0], Lit) and not w.parts[0].quoted:
                m = shell.ASSIGN_RE.fullmatch(w.parts[0].text)
                if m:
                    yield m.group(1)
                else:
                    break
            else:
                break

    def _simple(self, cmd: shell.Command) -> None:
        words = cmd.words()
        k = 0
        while k < len(words) and self._is_assignment(words[k]):
            k += 1
        if k == len(words):
            for w in words:
                self.assignment_word(w)
            return
        head = shell.bare(words[k])
        line, col = self.lexer.position(words[k].start)
        if k == 0 and head is not None and NAME_RE.fullmatch(head) and len(words) > 1 and shell.bare(words[1]) == "=":
            self._misassigned(words, 0)
            return
        if k > 0:
            # NAME=value word ...: bash runs `word` with NAME set for it alone and keeps none of the assignments.
            # Usually an unquoted space in a value; the word may be part of a secret, so it is not recorded.
            names = tuple(n for w in words[:k] for n in self._assigned_names([w]))
            line, col = self.lexer.position(words[0].start)
            self.env.notes.append(Note("prefix", line, col, "", names))
            return
        if head in shell.DECLARE:
            args = words[1:]
            i = 0
            while i < len(args):
                word = args[i]
                text = shell.bare(word)
                if text is not None and text.startswith("-"):
                    i += 1
                elif self._is_assignment(word):
                    self.assignment_word(word)
                    i += 1
                elif text is not None and NAME_RE.fullmatch(text) and i + 1 < len(args) \
                        and shell.bare(args[i + 1]) == "=":
                    self._misassigned(args, i)
                    i += 3
                else:
                    i += 1
            return
        if head == "unset":
            for word in words[1:]:
                text = shell.bare(word)
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
        return isinstance(first, Lit) and not first.quoted and shell.ASSIGN_RE.fullmatch(first.text) is not None

    def _misassigned(self, words: list[Word | ArrayWord], i: int) -> None:
        """`NAME = value`: bash runs NAME as a command; keep the intended value aside for the caller to judge."""
        name = shell.bare(words[i]) or ""
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
    lexer = shell.Lexer(text.replace("\r\n", "\n"), display)
    tokens, _ = lexer.tokens()
    _Evaluator(lexer, env).run(tokens)
    return env
