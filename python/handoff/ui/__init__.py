"""handoff's pages: the domain map, a model's page, run status (docs/ui.md).

``mapview`` (pure: the map as a page, a self-contained HTML file, Mermaid), ``pages`` (pure: the
model and run-status pages as HTML), ``app`` (the FastAPI app Airflow's API server mounts through
``handoff.airflow.plugin``). ``static/`` holds the CSS, map.js and the vendored graph library
(``make vendor-js``). Nothing here imports Airflow; every query goes through ``Registry``.
"""
