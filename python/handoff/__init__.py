"""handoff: cross-domain dbt pipelines on Airflow 3."""

__version__ = "0.1.0"
