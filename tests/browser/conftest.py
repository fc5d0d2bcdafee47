"""Browser fixtures: the real server as a subprocess on the tiny offline hub, driven by Debian's chromium.

Playwright only drives the browser here: the chromium binary comes from Debian's `chromium` package
(run-tests.sh installs it), and `playwright install` is never run.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    WebError,
    sync_playwright,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BROWSER_TESTS = Path(__file__).resolve().parent
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# No sandbox: CI runs as root, where chromium refuses to start sandboxed. The rest turns off chromium's
# background traffic to Google services, so that the tests stay offline and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in tests/browser as `browser`, before `-m` selects on markers."""
    for item in items:
        if BROWSER_TESTS in item.path.resolve().parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class LiveServer:
    """A webui.py process serving on 127.0.0.1."""

    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: IO[bytes]

    @property
    def log(self) -> str:
        """Return everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Ask the server to exit, kill it if it does not within STOP_TIMEOUT_S, and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The readiness probe must not go through an HTTP proxy that the environment may configure.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_ok(url: str) -> bool:
    """Return True once GET url answers 200."""
    try:
        with _direct.open(url, timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        error.close()
        return False
    except OSError:  # refused, reset or timed out: not listening yet
        return False


def _launch(hub: Path, workdir: Path, extra_args: tuple[str, ...],
            prepare: Callable[[Path], None] | None = None) -> LiveServer:
    """Start webui.py on a free port and return once GET / answers 200; fail the test with its log if not.

    workdir receives the server's data dir (data/) and its combined stdout and stderr (server.log);
    ``prepare(data_dir)`` may fill the data dir before the server starts (tracks written as files, say).
    """
    port = _free_port()
    data_dir = workdir / "data"
    data_dir.mkdir()
    if prepare is not None:
        prepare(data_dir)
    log_path = workdir / "server.log"
    log_file = log_path.open("wb")
    env = {
        **os.environ,
        "HF_HOME": str(hub),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AUDIOCRAFT_CACHE_DIR", None)  # it would make audiocraft look outside HF_HOME
    command = [
        sys.executable, "webui.py",
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--device", "cpu",
        *extra_args,
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, data_dir, process, log_path, log_file)

    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers_ok(server.url + "/"):
        if process.poll() is not None:
            server.stop()
            pytest.fail(f"webui.py exited with code {process.returncode} while starting:\n{server.log}",
                        pytrace=False)
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"webui.py did not answer GET / within {START_TIMEOUT_S:.0f} s:\n{server.log}",
                        pytrace=False)
        time.sleep(0.1)
    return server


@pytest.fixture
def start_server(
    tiny_hub: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveServer]]:
    """Return start_server(*extra_args, prepare=None): a fresh server with its own data dir, stopped after the test.

    ``prepare(data_dir)`` runs before the server starts, to put files in its data dir.
    """
    servers: list[LiveServer] = []

    def start(*extra_args: str, prepare: Callable[[Path], None] | None = None) -> LiveServer:
        servers.append(_launch(tiny_hub, tmp_path_factory.mktemp("server"), extra_args, prepare))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def _shared_servers() -> Iterator[dict[tuple[str, ...], LiveServer]]:
    """Yield the live servers by their extra flags; stop them all at the end of the session."""
    servers: dict[tuple[str, ...], LiveServer] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def live_server(
    request: pytest.FixtureRequest,
    _shared_servers: dict[tuple[str, ...], LiveServer],
    tiny_hub: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> LiveServer:
    """Return the server shared by the session's browser tests (one data dir for all of them).

    Extra flags: `@pytest.mark.parametrize("live_server", [("--flag", "value")], indirect=True)`.
    Each distinct set of flags gets one server that lives until the end of the session, so tests
    with and without flags can come in any order without restarting servers.
    """
    flags = tuple(getattr(request, "param", ()))
    if flags not in _shared_servers:
        _shared_servers[flags] = _launch(tiny_hub, tmp_path_factory.mktemp("server"), flags)
    return _shared_servers[flags]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Yield Debian's chromium, headless, driven by Playwright."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run ./run-tests.sh, which installs Debian's chromium, "
                    "or skip the browser tests with -m 'not browser'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_errors() -> list[str]:
    """Return the list collecting this test's console errors and uncaught exceptions.

    A test that provokes errors on purpose (say, it stops the server, so the page's reconnect
    attempts fail) checks and removes the ones it expects; any left fail the test.
    """
    return []


# start_server is requested only for the teardown order: pytest tears fixtures down in reverse, so the
# pages close before the servers a test started stop, and no reconnect attempt logs a console error.
@pytest.fixture
def new_page(
    browser: Browser, browser_errors: list[str], start_server: Callable[..., LiveServer]
) -> Iterator[Callable[..., Page]]:
    """Return new_page(width=1280, height=800, **context_options): a page in its own browser context (own storage).

    context_options go to ``browser.new_context`` (``timezone_id``, ``color_scheme`` ...).

    Console errors and uncaught exceptions of every such page, including tabs that a test opens
    itself with page.context.new_page(), fail the test at teardown (see browser_errors).
    """
    contexts: list[BrowserContext] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            browser_errors.append(f"console error: {message.text} (at {where['url']}:{where['lineNumber']})")

    def on_web_error(web_error: WebError) -> None:
        browser_errors.append(f"uncaught exception: {web_error.error.stack or web_error.error.message}")

    def open_page(width: int = 1280, height: int = 800, **context_options: object) -> Page:
        # Playwright emulates a light system scheme unless told; the README's screenshots show the dark theme.
        options = {"color_scheme": "dark", **context_options}
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True, **options)
        context.on("console", on_console)
        context.on("weberror", on_web_error)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
    if browser_errors:
        pytest.fail("the browser reported errors:\n" + "\n".join(browser_errors), pytrace=False)


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    """Return a desktop-sized page (1280x800)."""
    return new_page()


@pytest.fixture
def narrow_page(new_page: Callable[..., Page]) -> Page:
    """Return a phone-sized page (390x844)."""
    return new_page(390, 844)


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """Return screenshot(name, target=None): save docs/screenshots/<name>.png for the README.

    target is a Page or a Locator; by default the test's `page`.
    """

    def save(name: str, target: Page | Locator | None = None) -> Path:
        assert name and "/" not in name and "\\" not in name, f"not a plain file name: {name!r}"
        path = SCREENSHOTS / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (target or request.getfixturevalue("page")).screenshot(path=str(path))
        return path

    return save
