"""Which dbt project may publish which domain (pure; docs/registry.md, "Trust model").

A domain is bound to the dbt project of its first publish: only a **never-published** domain binds
silently. A domain that has been published and is bound to no project now (a transfer gave its
project to another domain, or a registry from before bindings had several domains on one project)
is not up for grabs: publishing it needs ``--takeover --reason`` (or a transfer), recorded in the
history like any other binding change. Publishing a domain from another project is
refused, and so is publishing a second domain from a project that already publishes one (one
project is one domain, so a project name maps to its domain). Only an explicit, logged transfer
changes a binding: ``handoff registry transfer DOMAIN --to-project P --reason TEXT`` or
``handoff publish --takeover --reason TEXT``.

``conflict`` says what is wrong (the same words for ``check`` and ``publish``); ``findings`` is the
HO300 rule of ``handoff check``.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .checks import Finding
from .mesh import Domain, Mesh

CODE = "HO300"
ACTOR_ENV = "HANDOFF_ACTOR"
PROJECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class Conflict:
    """Why ``domain`` may not be published from ``project``."""

    domain: str
    project: str
    bound_to: str | None  # the project the domain is bound to (when it is another)
    held_by: str | None  # the domain the project publishes (when it is another)
    unbound: bool = False  # published before and bound to no project now

    def message(self) -> str:
        if self.unbound:
            return (f"domain {self.domain} has been published before and is bound to no dbt project now (its "
                    f"project's binding moved: see `handoff registry history`); this plan comes from dbt project "
                    f"'{self.project}'")
        if self.bound_to is not None:
            return (f"domain {self.domain} is bound to dbt project '{self.bound_to}', but this plan comes from "
                    f"dbt project '{self.project}'")
        return f"dbt project '{self.project}' already publishes domain '{self.held_by}' (one project is one domain)"

    def hint(self) -> str:
        if self.unbound:
            return (f"if dbt project '{self.project}' is now {self.domain}'s, say so: `handoff publish --takeover "
                    f"--reason TEXT` or `handoff registry transfer {self.domain} --to-project {self.project} "
                    "--reason TEXT` (recorded in the history)")
        if self.bound_to is not None:
            return (f"publish {self.domain} from project '{self.bound_to}' — or, if the domain really moves, transfer "
                    f"it explicitly: `handoff registry transfer {self.domain} --to-project {self.project} --reason "
                    "TEXT` (or `handoff publish --takeover --reason TEXT`)")
        return (f"publish '{self.held_by}' from this project, or move the project explicitly: `handoff registry "
                f"transfer {self.domain} --to-project {self.project} --reason TEXT` (or `publish --takeover`)")


def conflict(domain: str, project: str, bound_to: str | None, held_by: str | None, *,
             published: bool = False) -> Conflict | None:
    """The conflict of publishing ``domain`` from ``project`` given the domain's binding (``bound_to``,
    None when unbound), the domain the project is bound to (``held_by``, None when none) and
    whether the domain has ever been published (``published``: then an unbound domain is no
    first publish, and binding it is a takeover)."""
    other_binding = bound_to if bound_to is not None and bound_to != project else None
    other_holder = held_by if held_by is not None and held_by != domain else None
    if bound_to is None and published:
        return Conflict(domain, project, None, other_holder, unbound=True)
    if other_binding is None and other_holder is None:
        return None
    return Conflict(domain, project, other_binding, other_holder if other_binding is None else None)


def findings(published: Mesh, candidates: Iterable[Domain]) -> list[Finding]:
    """HO300 for each plan under review whose domain or project is bound elsewhere in ``published``."""
    holders = {d.bound_project: d.name for d in published.domains.values() if d.bound_project}
    found = []
    for candidate in candidates:
        current = published.domains.get(candidate.name)
        bound = current.bound_project if current is not None else None
        problem = conflict(candidate.name, candidate.project, bound, holders.get(candidate.project),
                           published=current is not None)
        if problem is not None:
            found.append(Finding(CODE, f"{candidate.name} ({candidate.origin})", problem.message(), problem.hint(),
                                 frozenset({candidate.name})))
    return found


def actor() -> str:
    """Who is acting, for the transfer history: $HANDOFF_ACTOR (e.g. the CI user), else the OS user."""
    named = os.environ.get(ACTOR_ENV, "").strip()
    if named:
        return " ".join(named.split())[:200]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
