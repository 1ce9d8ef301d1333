"""The change classes of the impact report: every kind of change and whether it breaks a consumer.

docs/impact.md's class table is this tuple (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChangeClass:
    kind: str
    breaking: bool
    meaning: str
    uncertain: bool = False  # may break: the verdict is unknown (shown as "may break")



# Every change class, in the order the report lists them. ``breaking`` says whether the class
# breaks a consumer in another domain; it only matters for a model other domains can see.
CLASSES: tuple[ChangeClass, ...] = (
    ChangeClass("removed", True, "the model is gone; consumers' sources and sensors point at nothing"),
    ChangeClass("renamed", True, "same SQL and columns under another name, or likely (same columns and inputs, "
                "SQL edited); consumers must follow the new name"),
    ChangeClass("version_removed", True, "a dbt model version is gone (consumers pinned to it break)"),
    ChangeClass("access_narrowed", True, "public became protected or private: other domains may no longer read it"),
    ChangeClass("contract_removed", True, "the enforced contract was dropped: the columns are no longer guaranteed"),
    ChangeClass("relation_changed", True, "configured database, schema or alias changed, or it became ephemeral: "
                "consumers' sources name the old relation"),
    ChangeClass("column_removed", True, "a column is gone; with a registry, breaking for the consumers whose SQL "
                "reads it"),
    ChangeClass("column_renamed", True, "likely renamed: a column is gone and a new one has the same lineage "
                "(expression); breaking for the consumers that read the old name"),
    ChangeClass("column_type_changed", True, "a column's type changed (catalog, contract or documented type); "
                "with a registry, breaking for the consumers that read it"),
    ChangeClass("column_expression_changed", False, "the expression computing a column changed and its type "
                "cannot be compared (no catalog, contract or inferable type on one side); with a registry, may "
                "break the consumers that read it"),
    ChangeClass("columns_unknown", False, "the SQL changed but the columns cannot be determined (not compiled, "
                "SQL sqlglot cannot parse, no catalog or contract): may break; --unknown-columns decides",
                uncertain=True),
    ChangeClass("latest_version_changed", True, "dbt's latest_version moved; breaking when the new latest version "
                "drops or retypes a column of the old one"),
    ChangeClass("available_by_later", True, "the SLA moved later; with a registry, breaking only when a consumer's "
                "own SLA is earlier than the new one (it can no longer be met)"),
    ChangeClass("added", False, "a new model, seed or snapshot"),
    ChangeClass("version_added", False, "a new dbt model version next to the existing ones"),
    ChangeClass("access_widened", False, "became public: other domains may now depend on it"),
    ChangeClass("access_changed", False, "protected <-> private, or another group"),
    ChangeClass("contract_added", False, "the contract is now enforced"),
    ChangeClass("column_added", False, "a new documented column"),
    ChangeClass("column_undocumented", False, "a column left the YAML of an uncontracted model whose SQL did not "
                "change: a documentation change"),
    ChangeClass("deprecation_changed", False, "dbt deprecation_date set, moved or lifted"),
    ChangeClass("available_by_changed", False, "the SLA moved earlier, or was set or removed"),
    ChangeClass("sql_changed", False, "the SQL (or seed data) changed; the columns did not"),
    ChangeClass("config_changed", False, "dbt config changed (materialization, tags, grants, ...)"),
)
CLASS = {c.kind: c for c in CLASSES}
ORDER = {c.kind: i for i, c in enumerate(CLASSES)}


def classes_table() -> Sequence[tuple[str, str, str]]:
    """(kind, breaking, meaning) rows, for docs/impact.md."""
    return [(c.kind, "yes" if c.breaking else "no", c.meaning) for c in CLASSES]
