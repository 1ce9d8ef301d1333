"""UI: `handoff map --html` of the 20x250 mesh in headless Chromium, and page loads at 400 domains / 100k tasks.

``python -m bench.ui static|pages '<json>'`` are the worker steps (fresh processes).

- static: publish the 20x250 plans to a new SQLite registry, `handoff map --html` (CLI wall time),
  then open the file in headless Chromium (Debian's, no network: the file's CSP forbids every
  request) ``repeats`` times; the figure is the time from navigation start until the map is drawn
  (``document.body.dataset.renderMs``, set by map.js after the layout), median.
- pages: the web app (``handoff.ui.app``) under uvicorn on 127.0.0.1 against the 100k-task
  registry (bench/registry.py's 400 domains), SQLite or PostgreSQL. Server time of GET /api/map,
  the map page and a model page (the model with the widest consumer tree, and a median over sampled
  models), then the browser: the map page until drawn, a model page until its load event. The
  app runs here without Airflow's authentication (a dependency that accepts every request): the
  figures are handoff's own cost; in Airflow the JWT check adds well under a millisecond.
"""

from __future__ import annotations

import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request

from .registry import BLOCKS, _big_key, big_plans
from .registry import _step as registry_step
from .steps import run_step, step_main
from .suite import CACHE, MAIN_PY, REPO, Prepared, Report, Row, base_env, met, secs

TARGET_STATIC_S = 2.0
TARGET_PAGE_S = 2.0
SAMPLES = 10


def _support_browser() -> Any:
    """tests/support/browser.py: Debian's Chromium under selenium, the tests' own harness."""
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))
    from support import browser

    return browser


def _browser() -> Any:
    return _support_browser().start_browser(1400, 1000)


def _median_ms(driver: Any, url: str, repeats: int, expression: str) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeats):
        driver.get("about:blank")
        driver.get(url)
        deadline = time.monotonic() + 120
        value = None
        while time.monotonic() < deadline:
            value = driver.execute_script(f"return ({expression});")
            if value:
                break
            time.sleep(0.02)
        if not value:
            raise RuntimeError(f"{url} never reached {expression}")
        runs.append(float(value) / 1000)
    return statistics.median(runs), runs


RENDERED = "document.body && document.body.dataset.rendered === '1' && Number(document.body.dataset.renderMs)"
LOADED = ("performance.getEntriesByType('navigation')[0] && performance.getEntriesByType('navigation')[0].loadEventEnd"
          " > 0 && performance.getEntriesByType('navigation')[0].loadEventEnd")


def step_static(args: dict[str, Any]) -> dict[str, Any]:
    from handoff.registry import Registry

    db, html = Path(args["db"]), Path(args["html"])
    db.unlink(missing_ok=True)
    with Registry(f"sqlite:///{db}") as registry:
        registry.publish_files([args["plans_dir"]])
    started = time.perf_counter()
    subprocess.run([str(MAIN_PY), "-m", "handoff.cli", "map", "--html", str(html), "--registry", f"sqlite:///{db}"],
                   check=True, capture_output=True)
    cli = time.perf_counter() - started
    driver = _browser()
    try:
        median, runs = _median_ms(driver, html.as_uri(), args["repeats"], RENDERED)
        nodes = driver.execute_script("return window.handoffMap.cy().nodes().length")
        edges = driver.execute_script("return window.handoffMap.cy().edges().length")
        mode = driver.execute_script("return document.body.dataset.mode")
        status = driver.execute_script("return document.getElementById('status').textContent")
        if args.get("shot"):
            driver.save_screenshot(args["shot"])
        whole = []  # "show all": the whole mesh laid out and drawn (synchronous layout), then one frame
        for _ in range(args["repeats"]):
            driver.execute_script("document.getElementById('mode-focus').click()")
            whole.append(driver.execute_async_script(
                "const done = arguments[0], t = performance.now(); document.getElementById('mode-all').click();"
                "requestAnimationFrame(() => done(performance.now() - t));") / 1000)
        if args.get("shot_all"):
            driver.save_screenshot(args["shot_all"])
    finally:
        _support_browser().stop_browser(driver)
    return {"all_s": statistics.median(whole), "cli_s": cli, "render_s": median, "runs": runs, "bytes": html.stat().st_size, "nodes": nodes,
            "edges": edges, "mode": mode, "status": status}


def step_pages(args: dict[str, Any]) -> dict[str, Any]:
    import urllib.parse
    import urllib.request

    import uvicorn
    from handoff.registry import Registry
    from handoff.ui.app import Auth, Settings, create_app
    from handoff.ui.pages import Urls

    async def anyone(request: Request) -> None:  # bench only: handoff's cost, without Airflow's login
        return None

    from fastapi import FastAPI

    app = FastAPI()  # mounted at /handoff as Airflow's API server mounts it
    app.mount("/handoff", create_app(Settings(args["url"], Urls(prefix="/handoff"), None),
                                     Auth(page=anyone, api=anyone, token=lambda request: None)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}/handoff"
    while not server.started:
        time.sleep(0.05)
    with Registry(args["url"], must_exist=True) as registry:
        found = registry.domain_map()
    read = sorted({(e["upstream"], m) for e in found["edges"] for m in e["models"]})
    sample = random.Random(5).sample(read, SAMPLES)
    worst = next(t for t in read if t[0] == "b00dom00")

    def fetch(path: str) -> float:
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=300) as answer:  # noqa: S310 - 127.0.0.1
            body = answer.read()
            assert answer.status == 200 and body, path
        return time.perf_counter() - t0

    def model_path(domain: str, model: str) -> str:
        return f"/models/{urllib.parse.quote(domain)}/{urllib.parse.quote(model)}"

    repeats = args["repeats"]
    fetch("/api/map")  # the registry is opened at the first request
    result: dict[str, Any] = {
        "domains": len(found["domains"]), "edges": len(found["edges"]),
        "api_map_s": statistics.median(fetch("/api/map") for _ in range(repeats)),
        "map_page_s": statistics.median(fetch("/") for _ in range(repeats)),
        "model_worst_s": statistics.median(fetch(model_path(*worst)) for _ in range(repeats)),
        "model_median_s": statistics.median(fetch(model_path(*t)) for t in sample),
        "worst": ".".join(worst),
    }
    driver = _browser()
    try:
        result["browser_map_s"], result["browser_map_runs"] = _median_ms(driver, base + "/", repeats, RENDERED)
        result["browser_nodes"] = driver.execute_script("return window.handoffMap.cy().nodes().length")
        if args.get("shot"):
            driver.save_screenshot(args["shot"])
        result["browser_model_worst_s"], _ = _median_ms(driver, base + model_path(*worst), repeats, LOADED)
        result["consumers_shown"] = driver.execute_script(
            "return document.querySelectorAll('#consumers tbody tr').length")
    finally:
        _support_browser().stop_browser(driver)
        server.should_exit = True
        thread.join(timeout=10)
    return result


STEPS = {"static": step_static, "pages": step_pages}


def _ui_step(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return run_step(MAIN_PY, REPO, "ui", name, args, base_env(), 3600)


def _big_sqlite(prepared: Prepared) -> Path:
    big = CACHE / f"registry-100k-{_big_key(prepared.plans_dir)}.db"
    if not big.is_file():
        for stale in CACHE.glob("registry-100k-*"):
            stale.unlink()
        built = registry_step("build_big", {"db": str(big), "plans_dir": str(prepared.plans_dir)})
        big.with_suffix(".json").write_text(json.dumps(built))
    return big


def _big_postgres(prepared: Prepared) -> tuple[Any, str]:
    sys.path.insert(0, str(REPO / "tests"))
    from handoff.registry import Registry
    from support.postgres import start_postgres

    server = start_postgres()
    server.admin("CREATE DATABASE handoff_ui_bench")
    url = server.url("handoff_ui_bench")
    plans = big_plans(prepared.plans_dir, BLOCKS)
    with Registry(url) as registry:
        for k in range(0, len(plans), 20):
            registry.publish(plans[k:k + 20], validate=False)
    return server, url


def bench_ui(report: Report, prepared: Prepared, repeats: int) -> None:
    work = CACHE / "run" / "ui"
    work.mkdir(parents=True, exist_ok=True)
    docs_img = REPO / "docs" / "img"
    docs_img.mkdir(exist_ok=True)
    label = prepared.spec.label
    static = _ui_step("static", {"plans_dir": str(prepared.plans_dir), "db": str(work / "map.db"),
                                 "html": str(work / "map.html"), "repeats": max(repeats, 5),
                                 "shot": str(docs_img / f"map-{label}.png"),
                                 "shot_all": str(work / f"map-{label}-all.png")})
    report.raw["ui static"] = static
    report.add(Row("ui", f"`handoff map --html` of the {label} mesh ({static['status']}; {static['nodes']} nodes and "
                   f"{static['edges']} edges drawn, {static['mode']} view; {static['bytes'] / 1e6:.2f} MB file) opened "
                   f"offline in headless Chromium: navigation start -> map drawn, median of {len(static['runs'])}",
                   secs(static["render_s"]), f"\"show all\" (every domain and hand-over laid out and drawn) "
                   f"{secs(static['all_s'])}; writing the file (CLI, fresh process) {secs(static['cli_s'])}", "",
                   "≤ 2 s", met(static["render_s"] <= TARGET_STATIC_S)))
    big = _big_sqlite(prepared)
    backends: list[tuple[str, str, Any]] = [("SQLite", f"sqlite:///{big}", None)]
    try:
        server, pg_url = _big_postgres(prepared)
        backends.append(("PostgreSQL", pg_url, server))
    except RuntimeError as exc:
        report.notes.append(f"ui pages on PostgreSQL not measured: {exc}")
    try:
        for name, url, _ in backends:
            shot = str(docs_img / "map-400-domains.png") if name == "SQLite" else None
            pages = _ui_step("pages", {"url": url, "repeats": repeats, "shot": shot})
            report.raw[f"ui pages {name}"] = pages
            report.add(Row(
                "ui", f"map page at {pages['domains']} domains / 100k tasks ({pages['edges']} hand-overs), registry "
                f"on {name}: browser navigation -> map drawn (focus view, {pages['browser_nodes']} nodes), median",
                secs(pages["browser_map_s"]), f"server: GET /api/map {secs(pages['api_map_s'])}, map page HTML "
                f"{secs(pages['map_page_s'])}", "", "≤ 2 s", met(pages["browser_map_s"] <= TARGET_PAGE_S)))
            report.add(Row(
                "ui", f"model page at 100k tasks, registry on {name}: widest consumer tree {pages['worst']} "
                f"({pages['consumers_shown']} consumers listed), browser until the load event, median",
                secs(pages["browser_model_worst_s"]), f"server: that page {secs(pages['model_worst_s'])}; median over "
                f"{SAMPLES} sampled models {secs(pages['model_median_s'])}", "", "≤ 2 s",
                met(pages["browser_model_worst_s"] <= TARGET_PAGE_S)))
    finally:
        for _, _, server in backends:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    raise SystemExit(step_main(STEPS))
