"""Browser-test helpers: the Debian Chromium under Playwright, axe-core checks, and screenshots.

Playwright's own browser download cannot reach its host here, so tests drive ``/usr/bin/chromium``
(installed by scripts/prepare_test_services.py with ``fonts-noto-cjk``). Browser tests never skip: a
missing browser, font or axe-core fails them with what to install.

Under eventlet (the root conftest patches first) Playwright runs on a native thread of its own
(tests/support/playwright_thread.py), so the nameko containers in the same process keep serving the pages
it waits for. Stopping the Playwright driver hangs waiting for its child process, so the session ends by
closing the browser and killing the driver process itself.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from shared.config import REPO_ROOT

CHROMIUM = os.environ.get("SANJI_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE_JS = REPO_ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PORTRAIT = {"width": 1080, "height": 1920}


def require_browser_tools() -> None:
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium fonts-noto-cjk, "
                        "or run `make test`, which installs it)")
    if not AXE_JS.exists():
        problems.append(f"axe-core is missing ({AXE_JS}): npm ci --prefix tests/browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing: pip install -c constraints.txt -e '.[test]'")
    if problems:
        pytest.fail("browser tests cannot run: " + "; ".join(problems), pytrace=False)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def stop_driver(manager) -> None:
    """End the Playwright driver without ``stop()`` (which waits forever for the child under eventlet)."""
    client = getattr(manager, "_client", None)
    process = getattr(getattr(client, "_transport", None), "_proc", None)
    if process is not None and process.returncode is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


SERIOUS = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.1 A/AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return [violation for violation in result if violation["impact"] in SERIOUS]


def axe_check(page) -> None:
    """Fail on any serious or critical accessibility violation, naming each with its elements."""
    violations = axe_violations(page)
    assert not violations, "axe: " + json.dumps(violations, ensure_ascii=False, indent=1)


def screenshot(page, name: str) -> Path:
    """Save the page as docs/screenshots/<name>.png (kept in the repository: the pages as they are)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def fits_width(page) -> bool:
    """No horizontal scrolling of the page itself (wide tables scroll inside their own box)."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


PASSWORD = "correct-horse-battery"  # noqa: S105 - test accounts only (tests/browser/conftest.py)


def login(page, console_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person would."""
    page.goto(f"{console_url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
