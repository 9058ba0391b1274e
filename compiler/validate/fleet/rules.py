"""Imports every fleet rule module (each registers its rules on import), and runs them."""

from __future__ import annotations

from collections.abc import Sequence

from compiler.validate.fleet import (
    FLEET_RULES,
    Fleet,
    dns,
    firstsync,
    identity,
    metrics,
    ownership,
    scheduling,
    sharing,
)
from compiler.validate.model import Finding

# Importing a rule module registers its rules in FLEET_RULES.
RULE_MODULES = (dns, firstsync, identity, metrics, ownership, scheduling, sharing)


def check_fleet(fleet: Fleet, rules: Sequence[str] | None = None) -> list[Finding]:
    """Every finding of the fleet rules (all registered ones, or those named), sorted."""
    unknown = sorted(set(rules or ()) - set(FLEET_RULES))
    if unknown:
        raise ValueError(f"unknown fleet rule(s) {', '.join(unknown)} (known: {', '.join(sorted(FLEET_RULES))})")
    findings: list[Finding] = []
    for name, check in sorted(FLEET_RULES.items()):
        if rules is None or name in rules:
            findings.extend(check(fleet))
    return sorted(set(findings))
