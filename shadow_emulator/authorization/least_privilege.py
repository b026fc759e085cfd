"""Least privilege, measured: what each role was granted, what its sessions used, and what they never used.

A grant is one (policy, action, resource) of an Allow statement of the role's identity policies (inline and
managed), as the emulated IAM holds them now. A request the enforcer allowed (``Authorizer.usage``) uses every
grant whose action and resource patterns match it (IAM's ``*`` and ``?`` wildcards; actions case-insensitive). A
request no grant matches was allowed by the resource's own policy alone (a key policy, a bucket policy).

``report`` answers for the roles asked about; the emulator serves it at ``POST /_shadow_emulator/permissions``
(body ``{"roles": [role ARNs]}``). Grants are read while the roles exist and remembered (``ledger``): ask once
while they exist (before the deploy that deletes them) and again at the end, for every request made meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import policies
from .principals import Principal


@dataclass(frozen=True)
class Grant:
    policy: str
    action: str
    resource: str

    def allows(self, action: str, resource: str) -> bool:
        return _pattern(self.action.lower()).fullmatch(action.lower()) is not None and \
            (self.resource == "*" or _pattern(self.resource).fullmatch(resource) is not None)


@lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text), re.DOTALL)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def grants(role_arn: str) -> list[Grant]:
    """The role's Allow grants, one per policy, action and resource (NotAction / NotResource statements are kept
    as the text AWS would match them against: ``NotAction:...`` never counts as used, so it is always reported)."""
    account, name = role_arn.split(":")[4], role_arn.split("/")[-1]
    found = []
    for entry in policies.identity_policies(Principal(role_arn, "role", name, account)):
        statements = entry["policy"].get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if statement.get("Effect") != "Allow":
                continue
            actions = _listed(statement.get("Action")) or [f"NotAction:{a}" for a in _listed(statement.get("NotAction"))]
            resources = _listed(statement.get("Resource")) or [f"NotResource:{r}" for r in _listed(statement.get("NotResource"))]
            found += [Grant(entry["name"], action, resource) for action in actions for resource in resources]
    return list(dict.fromkeys(found))


def report(role_arns: list[str], usage: dict[tuple[str, str, str], int],
           ledger: dict[str, list[Grant]] | None = None) -> dict[str, dict[str, Any]]:
    """Per role ARN: ``granted`` (every grant), ``used`` (each allowed request: action, resource, count and the
    grants it used), ``unused`` (grants no request used) and ``by_resource_policy`` (requests no grant covers).
    ``ledger`` (role ARN -> grants) adds the grants seen before and keeps those seen now."""
    answer = {}
    ledger = {} if ledger is None else ledger
    for role_arn in role_arns:
        granted = ledger[role_arn] = list(dict.fromkeys([*ledger.get(role_arn, []), *grants(role_arn)]))
        requests = sorted((action, resource, count) for (who, action, resource), count in usage.items() if who == role_arn)
        used, by_resource_policy, matched = [], [], set()
        for action, resource, count in requests:
            covering = [grant for grant in granted if grant.allows(action, resource)]
            matched.update(covering)
            entry = {"action": action, "resource": resource, "count": count}
            if covering:
                used.append({**entry, "grants": [_dict(grant) for grant in covering]})
            else:
                by_resource_policy.append(entry)
        answer[role_arn] = {"granted": [_dict(g) for g in granted], "used": used,
                            "unused": [_dict(g) for g in granted if g not in matched],
                            "by_resource_policy": by_resource_policy}
    return answer


def _dict(grant: Grant) -> dict[str, str]:
    return {"policy": grant.policy, "action": grant.action, "resource": grant.resource}


__all__ = ["Grant", "grants", "report"]
