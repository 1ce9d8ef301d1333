"""The bad-input corpus, data-driven: one case per way an input can be wrong, across every command.

Each case asserts what the developers' guide promises for bad input (issue #12):
- exit 2 (1 for a rule violation, e.g. a domain bound to another dbt project);
- exactly one line on stderr, ``handoff…: error: …``, naming the file / node / key (the case's
  fragments) and saying what to do (a hint after " — ", or argparse's "see `… --help`");
- no traceback, nothing on stdout (except ``check``'s findings for exit 1);
- nothing written or half-written: the case's folder and the registry are unchanged;
- no secret: the password planted in URLs and API answers never shows.

Cases run in process through ``handoff.cli.main`` (the real parser and handlers; a subprocess per
case would cost minutes). tests/test_cli_errors.py keeps the subprocess-based corpus.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import socket
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from handoff import cli
from handoff.manifest import load_manifest
from handoff.plan import compile_manifest
from support.documents import plan_text

SECRET = "Hunter2-zX9q"


@dataclass(frozen=True)
class Case:
    argv: list[str]
    fragments: tuple[str, ...]
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    stdout: tuple[str, ...] = ()  # exit-1 checks print their findings on stdout


# ---- inputs -------------------------------------------------------------------------------

def _plan_variants(plan: dict[str, Any]) -> dict[str, Callable[[dict[str, Any]], None]]:
    def task(p: dict[str, Any], kind: str = "dbt") -> dict[str, Any]:
        return next(t for t in p["pipelines"][0]["tasks"] if (t["kind"] == "sensor") == (kind == "sensor"))

    def pipeline(p: dict[str, Any]) -> dict[str, Any]:
        return p["pipelines"][0]

    return {
        "dag_id_newline": lambda p: pipeline(p).update(dag_id=pipeline(p)["dag_id"] + "\n"),
        "dag_id_squat": lambda p: pipeline(p).update(dag_id="finance__daily"),
        "domain_newline": lambda p: p["domain"].update(name="shapes\n"),
        "domain_tab": lambda p: p["domain"].update(name="sha\tpes"),
        "project_traversal": lambda p: p["dbt"].update(project_name="../../etc"),
        "project_absolute": lambda p: p["dbt"].update(project_name="/etc"),
        "project_nul": lambda p: p["dbt"].update(project_name="shapes\u0000"),
        "tests_option": lambda p: task(p).update(tests=["--full-refresh"]),
        "tests_profiles_dir": lambda p: task(p).update(tests=["--profiles-dir=/tmp/elsewhere"]),
        "tests_selector_widening": lambda p: task(p).update(tests=["+base"]),
        "select_option": lambda p: task(p).update(select="--target=prod"),
        "unique_id_newline": lambda p: task(p).update(unique_id="model.shapes.base\n"),
        "pool_newline": lambda p: task(p).update(pool="default_pool\n"),
        "slack_carriage_return": lambda p: task(p).update(slack="#data\r"),
        "start_date_feb_30": lambda p: pipeline(p).update(start_date="2024-02-30"),
        "start_date_trailing_newline": lambda p: pipeline(p).update(start_date="2024-01-01\n"),
        "schedule_never_fires": lambda p: pipeline(p).update(schedule="0 5 31 2 *"),
        "schedule_tab": lambda p: pipeline(p).update(schedule="0\t5 * * *"),
        "timeout_overflow": lambda p: task(p).update(timeout_s=10**20),
        "timeout_zero": lambda p: task(p).update(timeout_s=0),
        "retries_sqlite_overflow": lambda p: task(p).update(retries=2**63),
        "retry_delay_string": lambda p: task(p).update(retry_delay_s="5m\n"),
        "poke_interval_negative": lambda p: task(p, "sensor").update(poke_interval_s=-1),
        "sensor_id_not_derived": lambda p: task(p, "sensor").update(upstream_model="mrt_other"),
        "missing_upstream": lambda p: task(p).pop("upstream"),
        "access_list": lambda p: task(p).update(access=["public"]),
        "access_unknown": lambda p: task(p).update(access="secret"),
        "groups_wrong_type": lambda p: p.update(pipelines={"daily": 1}),
        "plan_version_future": lambda p: p.update(plan_version=99),
        "handoff_version_newline": lambda p: p.update(handoff_version="0.1.0\n"),
    }


def _manifest_variants() -> dict[str, Callable[[dict[str, Any]], None]]:
    def node(m: dict[str, Any], uid: str = "model.shapes.base") -> dict[str, Any]:
        return m["nodes"][uid]

    def meta(m: dict[str, Any]) -> dict[str, Any]:
        n = node(m)
        return n.setdefault("config", {}).setdefault("meta", n.get("meta") or {})

    return {
        "relation_nan": lambda m: node(m).update(relation_name=float("nan")),
        "access_unknown": lambda m: node(m).update(access="secret"),
        "access_list": lambda m: node(m).update(access=["public"]),
        "timeout_zero": lambda m: meta(m).setdefault("handoff", {}).update(timeout="0s"),
        "timeout_huge": lambda m: meta(m).setdefault("handoff", {}).update(timeout="99999999999999999999d"),
        "retry_delay_newline": lambda m: meta(m).setdefault("handoff", {}).update(retry_delay="5m\n"),
        "groups_wrong_type": lambda m: m.update(groups=["g"]),
        "source_meta_wrong_type": lambda m: next(iter(m["sources"].values())).update(meta="x"),
        "schema_url_newline": lambda m: m["metadata"].update(
            dbt_schema_version="https://schemas.getdbt.com/dbt/manifest/v12.json\n"),
        "project_traversal": lambda m: m["metadata"].update(project_name="../../etc"),
        "nodes_list": lambda m: m.update(nodes=[]),
    }


class _Html(http.server.BaseHTTPRequestHandler):
    """An Airflow API URL that answers like something else: HTML, or a 401 echoing the login."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path.startswith("/echo"):
            self.send_response(401)
            payload = json.dumps({"detail": f"login refused for {body}", "password": SECRET}).encode()
        else:
            self.send_response(200)
            payload = b"<!doctype html><html><body>Welcome to the proxy</body></html>"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def world(fixture_manifest, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cli-corpus")
    manifest_path = fixture_manifest("shapes")
    plan = compile_manifest(load_manifest(manifest_path)).to_json()  # the document: variants edit it
    good = tmp / "shapes.plan.json"
    good.write_text(plan_text(plan))
    registry = f"sqlite:///{tmp / 'registry.db'}"
    assert cli.main(["publish", str(good), "--registry", registry]) == 0
    inputs = tmp / "inputs"
    inputs.mkdir()
    for name, mutate in _plan_variants(plan).items():
        broken = copy.deepcopy(plan)
        mutate(broken)
        (inputs / f"plan_{name}.json").write_text(json.dumps(broken, indent=1))
    raw = json.loads(manifest_path.read_text())
    for name, mutate in _manifest_variants().items():
        broken = copy.deepcopy(raw)
        mutate(broken)
        (inputs / f"manifest_{name}.json").write_text(json.dumps(broken))
    text = plan_text(plan)
    (inputs / "plan_nan.json").write_text(text.replace('"retries": 0', '"retries": NaN', 1))
    (inputs / "plan_deep.json").write_text("[" * 50_000 + "]" * 50_000)
    (inputs / "plan_empty.json").write_text("")
    (inputs / "plan_binary.json").write_bytes(b"\xff\xfe\x00{")
    (inputs / "plan_array.json").write_text("[]")
    (inputs / "plan_huge_int.json").write_text('{"plan_version": ' + "9" * 5000 + "}")
    (inputs / "manifest_deep.json").write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    (inputs / "manifest_array.json").write_text("[1, 2]")
    fork = copy.deepcopy(plan)
    fork["dbt"]["project_name"] = "shapes_fork"
    (inputs / "fork" / "shapes.plan.json").parent.mkdir()
    (inputs / "fork" / "shapes.plan.json").write_text(plan_text(fork))
    twin = inputs / "twin"
    twin.mkdir()
    (twin / "a.plan.json").write_text(text)
    (twin / "b.plan.json").write_text(text)
    (inputs / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")  # a file named like a secret key
    (inputs / "secret").write_text("[1, 2]")
    (inputs / "empty_folder").mkdir()
    (inputs / "a_file").write_text("not a folder")
    (inputs / "not_a_registry.db").write_text("plain text, not SQLite")
    other = sqlite3.connect(inputs / "other_tables.db")
    other.execute("CREATE TABLE someone_elses (id integer)")
    other.commit()
    other.close()
    (inputs / "snapshot_dir" / "registry_snapshot.json").mkdir(parents=True)
    _special_files(inputs / "special")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"tmp": tmp, "inputs": inputs, "plan": good, "registry": registry, "manifest": manifest_path,
               "project": manifest_path.parents[1], "api": f"http://127.0.0.1:{server.server_address[1]}"}
    finally:
        server.shutdown()
        server.server_close()


def _special_files(folder: Path) -> None:
    """Outputs that are not regular files (issue #12, -o onto a FIFO/device/socket, dangling links)."""
    folder.mkdir()
    os.mkfifo(folder / "fifo")
    if os.geteuid() == 0:  # a character device like /dev/null (1, 3), made here, never the real one
        os.mknod(folder / "device", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        os.mkfifo(folder / "device")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "socket"))
    (folder / "to_fifo").symlink_to(folder / "fifo")
    (folder / "dangling").symlink_to(folder / "missing" / "dir" / "x.json")
    (folder / "plans").mkdir()
    os.mkfifo(folder / "plans" / "shapes.plan.json")  # a folder of plans holding a FIFO


# ---- the corpus ----------------------------------------------------------------------------

I = "{inputs}"
R = ["--registry", "{registry}"]
API = {"HANDOFF_AIRFLOW_API_URL": "{api}", "HANDOFF_AIRFLOW_API_USERNAME": "admin",
       "HANDOFF_AIRFLOW_API_PASSWORD": SECRET}


def _plan_cases() -> dict[str, Case]:
    keys = {  # variant -> what the line must name (the key, the pipeline or task, the value)
        "dag_id_newline": ("dag_id",), "dag_id_squat": ("dag_id 'finance__daily' is not 'shapes__daily'",),
        "domain_newline": ("domain/name",), "domain_tab": ("domain/name",),
        "project_traversal": ("dbt/project_name",), "project_absolute": ("dbt/project_name",),
        "project_nul": ("dbt/project_name",), "tests_option": ("tests/0",), "tests_profiles_dir": ("tests/0",),
        "tests_selector_widening": ("tests/0",), "select_option": ("'select' was unexpected",), "unique_id_newline": ("unique_id",),
        "pool_newline": ("/pool",), "slack_carriage_return": ("/slack",),
        "start_date_feb_30": ("pipeline daily", "2024-02-30", "calendar"),
        "start_date_trailing_newline": ("start_date",), "schedule_never_fires": ("pipeline daily", "never fires"),
        "schedule_tab": ("schedule",), "timeout_overflow": ("timeout_s",), "timeout_zero": ("timeout_s",),
        "retries_sqlite_overflow": ("retries",), "retry_delay_string": ("retry_delay_s",),
        "poke_interval_negative": ("poke_interval_s",), "sensor_id_not_derived": ("must be named 'wait__",),
        "missing_upstream": ("'upstream' is a required property",), "access_list": ("access",),
        "access_unknown": ("access",), "groups_wrong_type": ("pipelines",), "plan_version_future": ("plan version 99",),
        "handoff_version_newline": ("handoff_version",),
    }
    cases: dict[str, Case] = {}
    commands = ("inspect", "publish", "check")
    for index, (name, fragments) in enumerate(sorted(keys.items())):
        command = commands[index % len(commands)]  # spread the variants over the commands that read plans
        path = f"{I}/plan_{name}.json"
        argv = [command, path] + (R if command != "inspect" else [])
        cases[f"{command} plan {name}"] = Case(argv, (f"plan_{name}.json", *fragments))
    for name, fragment in {"nan": "NaN is not valid JSON", "deep": "nested too deeply", "empty": "not valid JSON",
                           "binary": "not UTF-8", "array": "a plan is a JSON object",
                           "huge_int": "an integer has 5000 digits, more than the 4300 Python reads"}.items():
        for command in ("inspect", "publish"):
            argv = [command, f"{I}/plan_{name}.json"] + (R if command == "publish" else [])
            cases[f"{command} plan {name}"] = Case(argv, (f"plan_{name}.json", fragment))
    return cases


def _manifest_cases() -> dict[str, Case]:
    expected = {
        # the validators refuse what the plan refuses, naming the node's key (not "re-compile it")
        "relation_nan": ("relation",), "access_unknown": ("HO210", "access"), "access_list": ("HO210", "access"),
        "timeout_zero": ("HO103", "handoff.timeout"), "timeout_huge": ("HO103", "handoff.timeout"),
        "retry_delay_newline": ("HO103", "retry_delay"),
        "groups_wrong_type": ("'groups' is a list",), "source_meta_wrong_type": ("'meta' is a str",),
        "schema_url_newline": ("not a dbt manifest schema URL",),
        "project_traversal": ("metadata.project_name '../../etc' is not a dbt project name",),
        "nodes_list": ("'nodes' is a list",), "deep": ("nested too deeply",), "array": ("a manifest is a JSON object",),
    }
    cases = {}
    for name, fragments in expected.items():
        cases[f"compile manifest {name}"] = Case(["compile", f"{I}/manifest_{name}.json", "-o", "{tmp}/out/"],
                                                 (f"manifest_{name}.json", *fragments))
    cases["validate manifest deep"] = Case(["validate", f"{I}/manifest_deep.json"], ("nested too deeply",))
    cases["impact base deep"] = Case(["impact", "--base", f"{I}/manifest_deep.json", "--head", "{manifest}"],
                                     ("manifest_deep.json", "nested too deeply"))
    return cases


API_URLS = (  # (kind, HANDOFF_AIRFLOW_API_URL, what the line says)
    ("password with / and @", f"http://u:S3c/{SECRET}@127.0.0.1:1", "must not carry credentials"),
    ("password head as port", f"http://u:{SECRET}", "port is not a number"),
    ("password head as port, path", f"http://u:{SECRET}/api/v2", "port is not a number"),
    ("port zero", "http://127.0.0.1:0", "port is not a number"),
    ("port too big", "http://127.0.0.1:65536", "port is not a number"),
    ("no host", "http://:8080", "names no host"),
    ("query with token", f"http://127.0.0.1:8080/?token={SECRET}", "has a query"),
    ("blank", "http://127.0.0.1:8080/a b", "blank or a control character"))
EMPTY = "is empty: give a value"
MEMORY = "in-memory database"
CASES: dict[str, Case] = {
    **_plan_cases(),
    **_manifest_cases(),
    # empty and special values (issue #12 item 8)
    "compile -o empty": Case(["compile", "{manifest}", "-o", ""], ("-o/--output", EMPTY)),
    "compile --output blank": Case(["compile", "{manifest}", "--output", "  "], ("--output", EMPTY)),
    "compile manifest empty": Case(["compile", ""], ("manifest", EMPTY)),
    "validate manifest empty": Case(["validate", ""], ("manifest", EMPTY)),
    "inspect plan empty": Case(["inspect", ""], ("plan", EMPTY)),
    "publish plan empty": Case(["publish", "", *R], ("PLAN", EMPTY)),
    "publish --registry empty": Case(["publish", "{plan}", "--registry", ""], ("--registry", EMPTY)),
    "publish --registry memory": Case(["publish", "{plan}", "--registry", "sqlite://"], ("--registry", MEMORY)),
    "publish --registry :memory:": Case(["publish", "{plan}", "--registry", "sqlite:///:memory:"], (MEMORY,)),
    "publish --label empty": Case(["publish", "{plan}", *R, "--label", ""], ("--label", EMPTY)),
    "check --registry memory": Case(["check", "{plan}", "--registry", "sqlite+pysqlite://"], (MEMORY,)),
    "who --registry empty": Case(["who-depends-on", "shapes.base", "--registry", ""], ("--registry", EMPTY)),
    "who target empty": Case(["who-depends-on", "", *R], ("DOMAIN.MODEL", EMPTY)),
    "who target newline": Case(["who-depends-on", "shapes.base\n", *R], ("DOMAIN.MODEL", "control character")),
    "who target no domain": Case(["who-depends-on", ".base", *R], ("'.base' is not DOMAIN.MODEL",)),
    "explain --at empty": Case(["explain", "shapes.base", "--at", "", *R], ("--at", EMPTY)),
    "explain --at year 9999": Case(["explain", "shapes.base", "--at", "9999-12-31", *R], ("--at '9999-12-31'",)),
    "explain --at year 1": Case(["explain", "shapes.base", "--at", "0001-01-01", *R], ("--at '0001-01-01'",)),
    "explain --at month 13": Case(["explain", "shapes.base", "--at", "2026-13-01", *R], ("is not a date",)),
    "explain --at hour 25": Case(["explain", "shapes.base", "--at", "2026-11-24T25:00", *R], ("is not a date",)),
    "snapshot --output empty": Case(["snapshot", "--output", "", *R], ("--output", EMPTY)),
    "snapshot --output under a file": Case(["snapshot", "--output", f"{I}/a_file/snap.json", *R],
                                           ("cannot write", "a_file/snap.json", "nothing written")),
    "snapshot --output is a folder": Case(["snapshot", "--output", f"{I}/snapshot_dir/", *R],
                                          ("cannot write", "is a folder", "nothing written")),
    "compile -o under a file": Case(["compile", "{manifest}", "-o", f"{I}/a_file/x.plan.json"],
                                    ("cannot write", "a_file/x.plan.json", "nothing written")),
    "impact -o empty": Case(["impact", "--base", "{manifest}", "--head", "{manifest}", "-o", ""], ("--output", EMPTY)),
    "impact --registry memory": Case(["impact", "--base", "{manifest}", "--head", "{manifest}", "--registry",
                                      "sqlite://"], (MEMORY,)),
    "map --registry empty": Case(["map", "--registry", ""], ("--registry", EMPTY)),
    "map --html empty": Case(["map", "--html", "", *R], ("--html", EMPTY)),
    "reconcile --since empty": Case(["reconcile", "--since", "", *R], ("--since", EMPTY)),
    "reconcile --since huge": Case(["reconcile", "--since", "9999999d", *R], ("longer than 400 days",)),
    "reconcile --since digits": Case(["reconcile", "--since", "99999999999999999999d", *R], ("is not a duration",)),
    "reconcile --since newline": Case(["reconcile", "--since", "24h\n", *R], ("--since", "control character")),
    "reconcile --registry memory": Case(["reconcile", "--registry", "sqlite:///:memory:"], (MEMORY,)),
    "registry upgrade --registry empty": Case(["registry", "upgrade", "--registry", ""], ("--registry", EMPTY)),
    "registry status --registry memory": Case(["registry", "status", "--registry", "sqlite://"], (MEMORY,)),
    "registry history --limit 0": Case(["registry", "history", "--limit", "0", *R], ("--limit", "between 1 and 1000")),
    "registry history --limit text": Case(["registry", "history", "--limit", "ten", *R], ("--limit", "whole number")),
    # registries that are not what they claim; secrets in URLs (items 7, 10)
    "who registry not sqlite": Case(["who-depends-on", "shapes.base", "--registry",
                                     f"sqlite:///{I}/not_a_registry.db"], ("not_a_registry.db",)),
    "status registry of other tables": Case(["registry", "status", "--registry", f"sqlite:///{I}/other_tables.db"],
                                            ("other_tables.db", "not a handoff registry")),
    "publish password with @": Case(["publish", "{plan}", "--registry",
                                     f"postgresql://alice:{SECRET}@tail@127.0.0.1:1/registry"], ("127.0.0.1:1",)),
    # a password the driver would split differently from the raw text (redaction reads up to the last
    # '@'): refused before connecting, the message built from the raw text's redaction (engine.mask)
    **{f"{argv[0]} password split {n}": Case([*argv, "--registry", url], ("127.0.0.1:1", "percent-encode"))
       for n, url in enumerate((f"postgresql://alice:p@{SECRET}/word@127.0.0.1:1/reg",
                                f"postgresql://alice:{SECRET}/x@y@127.0.0.1:1/reg",
                                f"postgresql://alice:p@ss/{SECRET}@127.0.0.1:1/reg",
                                f"postgresql://alice:p@{SECRET}:9/w@127.0.0.1:1/reg",
                                f"postgresql+psycopg2://alice:a@b?{SECRET}@127.0.0.1:1/reg"))
       for argv in (["check", "{plan}"], ["publish", "{plan}"], ["who-depends-on", "shapes.base"],
                    ["registry", "status"], ["snapshot", "-o", "{tmp}/s.json"]) if n < 3 or argv[0] == "check"},
    "check password in query": Case(["check", "{plan}", "--registry",
                                     f"sqlite:///{I}/none/r.db?password={SECRET}"], ("none",)),
    "upgrade password wrong scheme": Case(["registry", "upgrade", "--registry", f"mysq1://alice:{SECRET}@h/db"],
                                          ("mysq1",)),
    "who password with blank": Case(["who-depends-on", "shapes.base", "--registry",
                                     f"postgresql://alice:{SECRET} x@127.0.0.1:1/db"], ("127.0.0.1",)),
    # the Airflow API (items 4, 7)
    "reconcile API url with credentials, wrong scheme": Case(
        ["reconcile", *R], ("HANDOFF_AIRFLOW_API_URL", "must not carry credentials"),
        env={**API, "HANDOFF_AIRFLOW_API_URL": f"htp://admin:{SECRET}@airflow:8080"}),
    "reconcile API url without scheme": Case(
        ["reconcile", *R], ("HANDOFF_AIRFLOW_API_URL", "must not carry credentials"),
        env={**API, "HANDOFF_AIRFLOW_API_URL": f"admin:{SECRET}@airflow:8080"}),
    "reconcile API url not http": Case(["reconcile", *R], ("HANDOFF_AIRFLOW_API_URL", "not an http(s) URL"),
                                       env={**API, "HANDOFF_AIRFLOW_API_URL": "ftp://airflow:8080"}),
    # the API URL is checked when the settings are read, never quoted by http.client (item 4)
    **{f"{' '.join(argv[:2])} API url {kind}": Case(argv, ("HANDOFF_AIRFLOW_API_URL", fragment),
                                                    env={**API, "HANDOFF_AIRFLOW_API_URL": url})
       for argv in (["reconcile", *R], ["explain", "shapes.base", "--at", "2026-11-24", *R])
       for kind, url, fragment in API_URLS},
    "reconcile API timeout nan": Case(["reconcile", *R], ("HANDOFF_AIRFLOW_API_TIMEOUT",),
                                      env={**API, "HANDOFF_AIRFLOW_API_TIMEOUT": "nan"}),
    "reconcile API timeout negative": Case(["reconcile", *R], ("HANDOFF_AIRFLOW_API_TIMEOUT",),
                                           env={**API, "HANDOFF_AIRFLOW_API_TIMEOUT": "-5"}),
    "reconcile API timeout infinite": Case(["reconcile", *R], ("HANDOFF_AIRFLOW_API_TIMEOUT",),
                                           env={**API, "HANDOFF_AIRFLOW_API_TIMEOUT": "inf"}),
    "explain --at API answers HTML": Case(["explain", "shapes.base", "--at", "2026-11-24", *R],
                                          ("an HTML page, not JSON", "HANDOFF_AIRFLOW_API_URL"), env=API),
    "explain --at API 401 echoes the login": Case(["explain", "shapes.base", "--at", "2026-11-24", *R],
                                                  ("answered 401",), env={**API, "HANDOFF_AIRFLOW_API_URL": "{api}/echo"}),
    # publishing rules (items 1, 4): exit 1 for the rule, 2 for wrong arguments
    "publish from another dbt project": Case(["publish", f"{I}/fork/shapes.plan.json", *R],
                                             ("shapes.plan.json", "bound to dbt project 'shapes'", "shapes_fork"), code=1),
    "check from another dbt project": Case(["check", f"{I}/fork/shapes.plan.json", *R], (), code=1,
                                           stdout=("HO300 error", "bound to dbt project 'shapes'")),
    "publish --takeover without reason": Case(["publish", f"{I}/fork/shapes.plan.json", *R, "--takeover"],
                                              ("--takeover needs --reason",)),
    "publish --reason without takeover": Case(["publish", "{plan}", *R, "--reason", "x"], ("only read with --takeover",)),
    "publish a folder without plans": Case(["publish", f"{I}/empty_folder", *R], ("empty_folder", "no *.plan.json")),
    "check one domain twice": Case(["check", f"{I}/twin", *R], ("shapes", "in several plans")),
    "transfer unknown domain": Case(["registry", "transfer", "ghost", "--to-project", "x", "--reason", "r", *R],
                                    ("'ghost' is not published",)),
    "transfer to a path": Case(["registry", "transfer", "shapes", "--to-project", "../x", "--reason", "r", *R],
                               ("--to-project", "'../x' is not a dbt project name")),
    "transfer to the same project": Case(["registry", "transfer", "shapes", "--to-project", "shapes", "--reason",
                                          "r", *R], ("already bound",)),
    "transfer without reason": Case(["registry", "transfer", "shapes", "--to-project", "x", "--reason", "", *R],
                                    ("--reason", EMPTY)),
    "debug without a command": Case(["--debug"], ("required: COMMAND",)),
    # handoff package (the deploy step): arguments that reach dbt's command line
    "package project empty": Case(["package", ""], ("project_dir", EMPTY)),
    "package not a project": Case(["package", f"{I}/empty_folder"], ("empty_folder", "no dbt_project.yml")),
    "package --target is an option": Case(["package", "{project}", "--target=--full-refresh"],
                                          ("'--full-refresh' would reach dbt as an option", "--target")),
    "package --profiles-dir is an option": Case(["package", "{project}", "--profiles-dir=-elsewhere"],
                                                ("would reach dbt as an option", "--profiles-dir")),
    "package --vars not JSON": Case(["package", "{project}", "--vars", "{day: 1"], ("--vars", "is not JSON")),
    "package --vars NaN": Case(["package", "{project}", "--vars", '{"day": NaN}'], ("--vars", "NaN is not JSON")),
    "package --vars a list": Case(["package", "{project}", "--vars", "[1]"], ("--vars must be a JSON object",)),
    "package --vars deep": Case(["package", "{project}", "--vars", "[" * 50_000], ("--vars", "is not JSON")),
    "package -o empty": Case(["package", "{project}", "-o", ""], ("--output", EMPTY)),
    # outputs that are not regular files in existing folders: one line, nothing written (files.output_target)
    **{f"{argv[0]} -o {kind}": Case([*argv, f"{I}/special/{name}"], (f"special/{name}", "cannot write", fragment))
       for argv in (["compile", "{manifest}", "-o"], ["snapshot", *R, "-o"], ["package", "{project}", "-o"],
                    ["impact", "--base", "{manifest}", "--head", "{manifest}", "-o"],
                    ["map", *R, "--format", "json", "-o"], ["map", *R, "--html"])
       for kind, name, fragment in (("FIFO", "fifo", "named pipe (FIFO), not a regular file"),
                                    ("device", "device", ", not a regular file"),
                                    ("socket", "socket", "socket, not a regular file"),
                                    ("link to FIFO", "to_fifo", "named pipe (FIFO)"),
                                    ("dangling link", "dangling", "special/missing/dir does not exist"),
                                    ("missing folders", "nowhere/deeper/", "does not exist"))},
    # inputs that are not regular files: refused at once, never read (a FIFO would block for ever)
    **{f"{' '.join(a for a in argv if not a.startswith(('{', '@')))} reads {kind}": Case([fill.replace("@", f"{I}/special/{name}") for fill in argv],
                                       (f"special/{name}", "not a regular file"))
       for argv in (["inspect", "@"], ["publish", "@", *R], ["check", "@", *R], ["compile", "@"],
                    ["validate", "@"], ["impact", "--base", "@", "--head", "{manifest}"],
                    ["compile", "{manifest}", "--catalog", "@"])
       for kind, name in (("FIFO", "fifo"), ("device", "device"), ("socket", "socket"), ("link to FIFO", "to_fifo"))},
    "publish folder holding a FIFO plan": Case(["publish", f"{I}/special/plans", *R],
                                               ("special/plans/shapes.plan.json", "named pipe (FIFO)")),
    "check folder holding a FIFO plan": Case(["check", f"{I}/special/plans", *R],
                                             ("special/plans/shapes.plan.json", "named pipe (FIFO)")),
    # secret-looking words in paths and prose are not masked (redact's colon rule); "***" never shows
    "sla --registry empty": Case(["sla", "--registry", ""], ("--registry", EMPTY)),
    "sla --registry memory": Case(["sla", "--registry", "sqlite://"], (MEMORY,)),
    # echoed input is capped (errors.ECHO_LIMIT): a 100,000-character name costs one short line
    **{f"{argv[0]} echoes a huge {what}": Case(argv, (f"characters)…{argv[1][-5:].strip()}" if n else "characters)…",))
       for what, n, argv in (
           ("name", 1, ["explain", "x" * 100_000, *R]),
           ("target", 1, ["who-depends-on", "." + "y" * 100_001, *R]),
           ("path", 1, ["inspect", "/tmp/" + "z" * 99_995]),
           ("label", 0, ["publish", "{plan}", *R, "--label", "l" * 99_999 + "\n"]))},
    "compile a file named passwd": Case(["compile", f"{I}/passwd"], ("inputs/passwd: not valid JSON",)),
    "inspect a file named token": Case(["inspect", "token"], ("token: file not found",)),
    "validate a file named secret": Case(["validate", f"{I}/secret"], ("inputs/secret: ", "JSON object")),
    "publish a file named password": Case(["publish", "password", *R], ("password: ", "not found")),
    "package -o stdout": Case(["package", "{project}", "-o", "-"], ("--output", "binary SQLite file")),
}


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (SQLite's -wal/-shm bookkeeping aside) with size and mtime."""
    found = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.endswith(("-wal", "-shm")):
                continue
            path = Path(root, name)
            info = path.lstat()  # a FIFO or a link replaced by a file, a dangling link's target created: seen
            found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
        for name in _dirs:
            found[str(Path(root, name).relative_to(folder)) + "/"] = (0, 0)
    return found


def _registry_state(url: str) -> Any:
    conn = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
    try:
        return (conn.execute("SELECT name, plan_sha256, dbt_project FROM domains ORDER BY name").fetchall(),
                conn.execute("SELECT count(*) FROM publications").fetchone(),
                conn.execute("SELECT count(*) FROM domain_transfers").fetchone())
    finally:
        conn.close()


def test_the_corpus_is_big_and_covers_every_command() -> None:
    from handoff.cli import build_parser

    assert len(CASES) >= 100
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    covered = {case.argv[0] for case in CASES.values()}
    assert set(commands) - {"--debug"} <= covered, set(commands) - covered
    assert {c.argv[1] for c in CASES.values() if c.argv[0] == "registry"} >= {"upgrade", "status", "history",
                                                                                "transfer"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    values = {k: str(v) for k, v in world.items()}

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text

    argv = [fill(a) for a in case.argv]
    for key in [k for k in os.environ if k.startswith("HANDOFF_")]:
        monkeypatch.delenv(key)
    for key, value in case.env.items():
        monkeypatch.setenv(key, fill(value))
    monkeypatch.chdir(world["tmp"])
    before = (_tree(world["tmp"]), _registry_state(world["registry"]))
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == case.code, (code, out, err)
    assert "Traceback" not in err and SECRET not in err and SECRET not in out
    planted = " ".join([*argv, *case.env.values()])  # a mask where nothing was planted is over-masking
    assert "***" not in err or any(x in planted for x in (SECRET, "password=", "@")), err
    if case.stdout:
        for fragment in case.stdout:
            assert fragment in out, (fragment, out)
        assert err == ""
    else:
        assert out == "", out
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        line = lines[0]
        assert len(line) < 2_000, f"{len(line)} characters: echoed input is not capped"
        assert line.startswith("handoff") and ": error: " in line, line
        assert " — " in line or "--help`" in line, f"no hint of what to do: {line}"
        if argv[0] == "compile":  # compile's own output: "re-compile it" would be circular
            assert "re-compile" not in line, line
        for fragment in case.fragments:
            assert fragment in line, (fragment, line)
    assert (_tree(world["tmp"]), _registry_state(world["registry"])) == before, "something was written"


def test_dash_means_standard_output(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``-o -`` writes to standard output (compile, snapshot, impact, map) and creates no file '-'."""
    monkeypatch.chdir(world["tmp"])
    before = _tree(world["tmp"])
    assert cli.main(["compile", str(world["manifest"]), "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["domain"]["name"] == "shapes"
    assert cli.main(["snapshot", "-o", "-", "--registry", world["registry"]]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)["domains"]] == ["shapes"]
    assert cli.main(["map", "--registry", world["registry"], "--format", "json", "-o", "-"]) == 0
    assert "shapes" in capsys.readouterr().out
    assert _tree(world["tmp"]) == before and not (world["tmp"] / "-").exists()


@pytest.mark.parametrize(("kind", "url", "fragment"), API_URLS, ids=[k for k, _, _ in API_URLS])
def test_a_bad_api_url_under_debug_shows_no_secret(kind: str, url: str, fragment: str, world: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--debug adds the traceback, never a piece of the URL's password (http.client's InvalidURL
    once quoted the password's head as a port, three times)."""
    for key, value in {**API, "HANDOFF_AIRFLOW_API_URL": url}.items():
        monkeypatch.setenv(key, value.replace("{api}", world["api"]))
    assert cli.main(["--debug", "reconcile", "--registry", world["registry"]]) == 2
    err = capsys.readouterr().err
    assert SECRET not in err and "InvalidURL" not in err and "S3c/" not in err
    assert fragment in err.strip().splitlines()[-1]
