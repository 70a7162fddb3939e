"""The published dashboard in a real headless browser: Debian's chromium, driven by Playwright.

Two dashboards are opened: the committed html/ as it is (what a user on a machine without the
internet opens), and one published afresh from the committed results/ and builds.json (``git
archive HEAD``: never results a user recorded since) into a temporary project by the main
command's publish step. Both are served on localhost (asv's pages load their JSON by XHR, which
file:// refuses) and opened in chromium; every request that is not to the local server is
refused and reported, so a page that still needs a CDN fails.

`make test` installs chromium (apt-get) and Playwright (the `test` extra); Playwright
never downloads a browser of its own here. Screenshots go to $DASHBOARD_SCREENSHOTS, else
to a pytest temporary folder; their paths are printed.
"""

import contextlib
import functools
import glob
import http.server
import json
import os
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest

from conftest import ROOT, committed, make_project
from torch_overhead.lib.dashboard import publish as dashboard_publish
from torch_overhead.lib.offline_html import remote_loads

BENCHMARK = "runtime_overhead.RuntimeOverhead.time_add1"
COUNTS = "instruction_count.InstructionCount.track_instructions"
# Every machine with committed results must get its button, and its series where it recorded one.
MACHINES = set(subprocess.run(["git", "-C", ROOT, "ls-tree", "-d", "--name-only", "HEAD", "results/"],
                              capture_output=True, text=True, check=True).stdout.replace("results/", "").split())
ONE_BUILD = "cf30153c"  # torch 2.13.0+cpu on cpu-2core
CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # what this closed network needs: no background connections, no QUIC, no GPU
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 20_000

GRID = "() => $('#summarygrid-display .benchmark-container:visible').length > 0"
PLOT = "() => $('#main-graph').data('plot') !== undefined"  # flot keeps its plot object there
# The series flot drew in the graph page: label and the points with a finite value.
PLOTTED_JS = """() => $('#main-graph').data('plot').getData().map(s => ({
    label: s.label,
    points: s.data.filter(p => p[1] !== null && isFinite(p[1])).length,
}))"""


def publish(path, only_cpu_build=None):
    """The main command's publish step (``lib/dashboard.publish``) on the committed results (on
    cpu-2core only the build ``only_cpu_build``, when given) in ``path``."""
    project = make_project(path)
    committed(project, "results", "builds.json")
    if only_cpu_build:
        for result in glob.glob(os.path.join(project, "results", "cpu-2core", "*-*.json")):
            if not os.path.basename(result).startswith(only_cpu_build):
                os.remove(result)
    assert dashboard_publish(project, "asv.conf.json", dict(os.environ, HOME=project)) == 0
    html = os.path.join(project, "html")
    assert remote_loads(html) == []
    return html


def committed_cpu_builds(results_dir):
    """Commits of the cpu-2core result files that hold a headline figure."""
    commits = set()
    for path in glob.glob(os.path.join(results_dir, "cpu-2core", "*-*.json")):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if BENCHMARK in data["results"]:
            commits.add(data["commit_hash"])
    return commits


@contextlib.contextmanager
def serve(directory):
    """``directory`` over HTTP on localhost, from a thread; yields the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=directory))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless chromium for the module, with a fresh empty profile; refuses every non-local request."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: `make test` installs it (apt-get install chromium), "
                    "or set DASHBOARD_CHROMIUM to a chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Playwright package is missing: `make test` installs it (pip install -e '.[test]')")
    refused = []

    def local_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900}, timeout=60_000)
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", local_only)
        context.refused = refused
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    path = os.environ.get("DASHBOARD_SCREENSHOTS") or str(tmp_path_factory.mktemp("dashboard-screenshots"))
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """Base URL of the dashboard published from all committed results."""
    with serve(publish(tmp_path_factory.mktemp("dashboard"))) as url:
        yield url


@pytest.fixture(scope="module")
def committed_html(tmp_path_factory):
    """The committed html/ and results/, as HEAD has them."""
    return committed(tmp_path_factory.mktemp("committed"), "html", "results")


class Page:
    """A fresh tab; waits that fail with what the page showed, not just a timeout."""

    def __init__(self, browser):
        self.browser = browser
        self.page = browser.new_page()
        self.errors = []
        # uncaught JavaScript errors (not 404s: asv asks for summaries of benchmarks never run, e.g. --slow ones)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, url):
        self.page.goto("about:blank")  # a full load each time, even where only the #hash differs
        self.page.goto(url, wait_until="load")

    def wait(self, what, condition):
        """Poll the JavaScript ``condition`` until true; fail at once on a page error or on asv's
        error page (a library that did not load), else after TIMEOUT_MS, saying what was shown."""
        from playwright.sync_api import Error as PlaywrightError
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        last = None
        while True:
            if self.errors or self.page.url.endswith("/error.html"):
                break
            try:
                if self.page.evaluate(condition):
                    # graph data arrives by several XHRs, each redrawing the plot: wait for all of them
                    self.page.wait_for_load_state("networkidle")
                    return
            except PlaywrightError as err:
                last = str(err).splitlines()[0]
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        pytest.fail(f"{what} did not render (waited at most {TIMEOUT_MS / 1000:.0f} s) at {self.page.url}; "
                    f"page errors: {self.errors}; last evaluation error: {last}; "
                    f"refused requests: {self.browser.refused}; page text: {self.page.inner_text('body')[:400]!r}")

    def plotted(self):
        return self.page.evaluate(PLOTTED_JS)

    def screenshot(self, shots, name, capsys):
        path = os.path.join(shots, name)
        self.page.screenshot(path=path)
        with capsys.disabled():
            print(f"\n  screenshot: {path}")
        return path

    def graph_url(self, base, **params):
        """The graph page's URL, built by asv's own format_hash_string (needs a loaded page)."""
        info = {"location": [BENCHMARK], "params": {key: [value] for key, value in params.items()}}
        return base + "index.html" + self.page.evaluate("info => $.asv.format_hash_string(info)", info)


@pytest.fixture
def page(browser):
    tab = Page(browser)
    yield tab
    tab.page.close()


def test_benchmark_grid_and_list_render(dashboard, page, shots, capsys):
    page.open(dashboard + "index.html")
    page.wait("the benchmark grid", GRID)
    grid = page.page.eval_on_selector_all("#summarygrid-display .benchmark-container",
                                          "els => els.map(e => e.getAttribute('href'))")
    assert "#" + BENCHMARK in grid, grid
    page.screenshot(shots, "grid.png", capsys)

    page.open(dashboard + "index.html#/summarylist")
    page.wait("the benchmark list", "() => $('#summarylist-body tbody tr:visible').length > 0")
    names = page.page.eval_on_selector_all("#summarylist-body tbody td:first-child > a:first-child",
                                           "els => els.map(e => e.textContent.trim())")
    assert BENCHMARK in names, names
    page.screenshot(shots, "list.png", capsys)
    assert not page.errors, page.errors
    assert not page.browser.refused, page.browser.refused


def machines_recording(results_dir, benchmark):
    """Machines whose committed result files hold a value of ``benchmark``."""
    machines = set()
    for path in glob.glob(os.path.join(results_dir, "*", "*-*.json")):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        values = (data["results"].get(benchmark) or [None])[0] or []
        if any(v is not None and v == v for v in values):
            machines.add(data["params"]["machine"])
    return machines


@pytest.mark.parametrize("benchmark", [BENCHMARK, COUNTS])
def test_every_machine_appears_together_each_labelled(dashboard, committed_html, page, benchmark):
    """The headline's times and its instruction counts: every machine's button, and a series drawn
    for each machine that recorded the benchmark (a machine may hold counts only)."""
    recording = machines_recording(os.path.join(committed_html, "results"), benchmark)
    assert {"nvidia-h200", "cpu-2core"} <= recording <= MACHINES, (recording, MACHINES)
    page.open(dashboard + "index.html#" + benchmark)
    page.wait("the graph", PLOT)
    buttons = page.page.evaluate("""() => $('#graphdisplay-navigation .panel').filter(
        (i, panel) => $(panel).find('.panel-heading').text().trim() == 'machine'
    ).find('.btn').map((i, b) => $(b).text().trim()).get()""")
    assert set(buttons) == MACHINES, f"machine selector shows {buttons}"
    drawn = {machine for series in page.plotted() if series["points"]
             for machine in MACHINES if f"machine-{machine};" in series["label"] + ";"}
    assert drawn == recording, f"series drawn with a point, by machine label: {page.plotted()}"


def test_graph_draws_both_cpu_builds(dashboard, page, shots, capsys):
    page.open(dashboard + "index.html")
    page.wait("the benchmark grid", GRID)
    page.open(page.graph_url(dashboard, machine="cpu-2core"))
    page.wait("the graph", PLOT)
    series = page.plotted()
    page.screenshot(shots, "graph-cpu-2core.png", capsys)
    assert series and max(s["points"] for s in series) >= 2, f"series and their points: {series}"
    assert not page.errors, page.errors
    assert not page.browser.refused, page.browser.refused


def test_one_recorded_build_draws_one_point(tmp_path, browser):
    """The check above can fail: with only torch 2.13.0 recorded on cpu-2core, each series has one point."""
    with serve(publish(tmp_path, only_cpu_build=ONE_BUILD)) as base:
        tab = Page(browser)
        try:
            tab.open(base + "index.html#" + BENCHMARK + "?machine=cpu-2core")
            tab.wait("the graph", PLOT)
            series = tab.plotted()
        finally:
            tab.page.close()
    assert series and max(s["points"] for s in series) == 1, series


def test_regressions_page_loads(dashboard, page, shots, capsys):
    page.open(dashboard + "index.html#/regressions")
    page.wait("the regressions page", "() => $('#regressions-body table:visible').length > 0")
    headings = page.page.eval_on_selector_all("#regressions-body table:visible thead th",
                                              "els => els.map(e => e.textContent.trim())")
    assert headings[:4] == ["Benchmark", "Date", "Commit", "Factor"], headings
    assert page.page.locator("#regressions-body a[href='regressions.xml']").count() == 1, "no feed link"
    page.screenshot(shots, "regressions.png", capsys)
    assert not page.errors, page.errors
    feed = page.page.request.get(dashboard + "regressions.xml")
    assert feed.ok and "<feed" in feed.text(), (feed.status, feed.text()[:300])


def test_committed_dashboard_loads_nothing_from_other_hosts(committed_html):
    assert remote_loads(os.path.join(committed_html, "html")) == []


def test_committed_dashboard_opens_offline_with_every_cpu_build(committed_html, browser, shots, capsys):
    """The committed html/ as a user without the internet opens it (every non-local request
    refused): the grid renders, and the headline's graph on cpu-2core draws a point for
    every committed build (html/ was republished after the last results were committed)."""
    builds = committed_cpu_builds(os.path.join(committed_html, "results"))
    with serve(os.path.join(committed_html, "html")) as base:
        tab = Page(browser)
        try:
            tab.open(base + "index.html")
            tab.wait("the benchmark grid", GRID)
            tab.screenshot(shots, "committed-grid.png", capsys)
            tab.open(tab.graph_url(base, machine="cpu-2core"))
            tab.wait("the graph", PLOT)
            series = tab.plotted()
            tab.screenshot(shots, "committed-graph-cpu-2core.png", capsys)
            errors = list(tab.errors)
        finally:
            tab.page.close()
    assert not errors, errors
    assert not browser.refused, browser.refused
    assert series and max(s["points"] for s in series) == len(builds), (len(builds), series)
