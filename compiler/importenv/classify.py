"""The report's account of every variable of the env file: where it went in the spec, or why it went nowhere
(derived, live look-up, unused, unknown, a fixed value the spec cannot keep), and the shell code skipped."""

from __future__ import annotations

from compiler.importenv.catalogue import FIXED_VALUES, KNOWN, SECRET_VARIABLES
from compiler.importenv.envfile import Computed, Note
from compiler.importenv.mapping import Mapper
from compiler.importenv.report import Line


def classify(m: Mapper) -> None:
    """Report every variable: where it went, or why it did not go anywhere."""
    secret_lines = {ln for name in SECRET_VARIABLES if (v := m.var(name)) for ln in v.lines}
    for name, var in sorted(m.env.variables.items(), key=lambda kv: (kv[1].line, kv[0])):
        if name in m.reported or (var.origin != "file" and not var.text() and not var.lines):
            continue
        if name in m.used:
            m.note("mapped", var, f"{name} -> {m.used[name]}")
            continue
        if var.origin != "file" and not var.lines:
            continue
        cls, what = KNOWN.get(name, ("unknown", ""))
        if var.origin == "convert_variables.sh":
            what = f"{what} (convert_variables.sh sets it again after the file)"
        value = var.text()
        if cls == "secret":
            if name.endswith("REDIS_PASSWORD") and (value or isinstance(var.value, Computed)):
                m.note("decision", var, f"{name} is set, but the spec's Memorystore has no AUTH password: "
                                        "drop the password, or ask for spec support before moving")
            else:
                m.note("unused", var, f"{name}: a secret no {m.kind} cluster's service reads")
            continue
        fixed = FIXED_VALUES.get(name)
        if fixed is not None and value not in (None, fixed):
            m.note("decision", var, f"{name}={value} differs from CAVEdeployment's {fixed}, which the "
                                    "compiler always uses: the spec cannot keep it")
        elif (isinstance(var.value, Computed) and var.value.how == "live") or cls == "live":
            how = f"`{var.value.command}`; " if isinstance(var.value, Computed) else ""
            m.note("live", var, f"{name}: {how}{what or 'not imported'}")
        elif cls == "unknown":
            m.note("unknown", var, name)
        elif cls == "derived":
            m.note("derived", var, f"{name}: {what}")
        else:
            m.note("unused", var, f"{name}: {what}")
    for name, var in m.env.misassigned.items():
        if name not in m.used:
            m.note("shell", var, f"{name}: spaces around '=', so bash never set it (not imported)")
    for note in m.env.notes:
        _shell_note(m, note, secret_lines)


def _shell_note(m: Mapper, note: Note, secret_lines: set[int]) -> None:
    where = f"{m.display}:{note.line}"
    if note.kind == "block":
        names = ", ".join(note.names) or "no variables"
        m.lines.append(Line("shell", where, f"`{note.what}` block skipped (sets {names})"))
    elif note.kind == "command":
        what = "the rest of a secret's line" if note.line in secret_lines else f"`{note.what}`"
        extra = " (quote the value: bash runs the text after ';' as a command; docs/pitfalls.md#p18)" \
            if note.line in secret_lines else ""
        m.lines.append(Line("shell", where, f"command {what} ignored{extra}"))
    elif note.kind == "prefix":
        names = ", ".join(note.names)
        m.lines.append(Line("decision", where, f"{names}: the value ends at an unquoted space and bash runs "
                                               f"the rest as a command, so {names} is never set (quote the "
                                               "value)"))
    elif note.kind == "source":
        m.lines.append(Line("shell", where, f"`{note.what}` of another file ignored: its variables are not "
                                            "imported"))
    elif note.kind == "unset-ref":
        m.lines.append(Line("shell", where, f"${note.what} is not set here (expands to nothing)"))
    elif note.kind == "unset":
        m.lines.append(Line("shell", where, f"unset {note.what}"))
