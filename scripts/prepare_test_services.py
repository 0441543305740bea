"""Make sure the machine services the test suite uses are up, starting them where this machine can.

The tests need RabbitMQ (with its management plugin: nameko's ``rabbit_config`` fixture creates a
throwaway vhost per test through the management API; and its stream plugin, whose protocol on :5552 the
event log's replay tests and ``make bench-replay`` speak) and PostgreSQL. Each problem is reported in one
line with what to do about it; the exit status is non-zero if the suite could not run.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

MANAGEMENT_URL = os.environ.get("SANJI_TEST_RABBIT_CTL_URL", "http://127.0.0.1:15672/api/overview")
STREAM_PORT = int(os.environ.get("SANJI_TEST_RABBIT_STREAM_PORT", "5552"))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def management_api_up() -> bool:
    request = urllib.request.Request(MANAGEMENT_URL, headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def run(command: list[str]) -> None:
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def ensure_rabbitmq() -> str | None:
    if not port_open(5672) and shutil.which("rabbitmq-server"):
        run(["rabbitmq-server", "-detached"])
        wait_for(lambda: port_open(5672), 60)
    if not port_open(5672):
        return "RabbitMQ is not reachable on 127.0.0.1:5672: start it with `rabbitmq-server -detached`"
    if not management_api_up():
        if shutil.which("rabbitmq-plugins"):
            run(["rabbitmq-plugins", "enable", "rabbitmq_management"])
        if not wait_for(management_api_up, 60):
            return ("the RabbitMQ management API is not answering on :15672: run "
                    "`rabbitmq-plugins enable rabbitmq_management`")
    # The stream protocol (department consumers with server-side offsets, docs/replay.md). Enabling a plugin
    # on a running node starts its listener without a restart; an enabled one is left as it is.
    if not port_open(STREAM_PORT):
        if shutil.which("rabbitmq-plugins"):
            run(["rabbitmq-plugins", "enable", "rabbitmq_stream"])
        if not wait_for(lambda: port_open(STREAM_PORT), 60):
            return (f"the RabbitMQ stream protocol is not answering on :{STREAM_PORT}: run "
                    "`rabbitmq-plugins enable rabbitmq_stream`")
    return None


def ensure_postgresql() -> str | None:
    if not port_open(5432) and shutil.which("pg_ctlcluster"):
        for version in sorted(glob.glob("/etc/postgresql/*")):
            run(["pg_ctlcluster", "--skip-systemctl-redirect", os.path.basename(version), "main", "start"])
        wait_for(lambda: port_open(5432), 30)
    if not port_open(5432):
        return ("PostgreSQL is not reachable on 127.0.0.1:5432: start it with "
                "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`")
    return None


BROWSER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "browser")
CHROMIUM = os.environ.get("SANJI_TEST_CHROMIUM", "/usr/bin/chromium")
CJK_FONT_GLOB = "/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc"


def ensure_browser() -> str | None:
    """The browser tests drive the Debian chromium package (Playwright cannot download its own browser here)
    and need a CJK font, and axe-core from npm for the accessibility checks."""
    missing = [package for package, present in (("chromium", os.access(CHROMIUM, os.X_OK)),
                                                ("fonts-noto-cjk", bool(glob.glob(CJK_FONT_GLOB))))
               if not present]
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        run(["apt-get", "update", "-qq"])
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is missing at {CHROMIUM}: install it with `apt-get install chromium fonts-noto-cjk`"
    if not glob.glob(CJK_FONT_GLOB):
        return "the CJK font is missing: install it with `apt-get install fonts-noto-cjk`"
    axe = os.path.join(BROWSER_DIR, "node_modules", "axe-core", "axe.min.js")
    if not os.path.exists(axe) and shutil.which("npm"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", BROWSER_DIR], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    if not os.path.exists(axe):
        return f"axe-core is missing: run `npm ci --prefix {BROWSER_DIR}` (needs Node.js and npm)"
    return None


def main() -> int:
    wanted = os.environ.get("SANJI_TEST_DATABASES", "sqlite,postgresql")
    problems = [problem for problem in (ensure_rabbitmq(),
                                        ensure_postgresql() if "postgresql" in wanted else None,
                                        ensure_browser()) if problem]
    for problem in problems:
        print(f"make test: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
