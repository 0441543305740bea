"""Playwright's sync API on a native thread of its own, for tests whose services run in this eventlet process.

Driven from an eventlet greenlet, Playwright's dispatcher greenlet and eventlet's hub take turns on one stack of
greenlets, and now and then a wake-up is lost: a call hangs for good although the browser has answered (seen
after a click that navigates to a page this process serves). Here every Playwright call runs on one dedicated
native thread whose event loop waits on the original (unpatched) selector; the test's greenlet waits
cooperatively for the answer, so the hub of the main thread keeps serving the pages meanwhile.

``PlaywrightThread.start()`` gives a proxy of the ``Playwright`` object; every object reached through it
(browser, context, page, locator, response …) is proxied too, and each method call is one call on the thread.
"""

from __future__ import annotations

import concurrent.futures
import types

import eventlet
from eventlet import patcher

_threading = patcher.original("threading")
_queue = patcher.original("queue")
_select = patcher.original("select")
_selectors = patcher.original("selectors")


class _NativePollSelector(_selectors._PollLikeSelector):
    """A poll() selector on the original select module (eventlet's green one has no poll)."""

    _selector_cls = _select.poll
    _EVENT_READ = _select.POLLIN
    _EVENT_WRITE = _select.POLLOUT

_PLAIN = (str, bytes, int, float, bool, type(None), dict, list, tuple)


class PlaywrightThread:
    def __init__(self):
        self._calls: _queue.Queue = _queue.Queue()
        self._thread = _threading.Thread(target=self._serve, name="playwright", daemon=True)
        self._manager = None

    def _serve(self):
        while True:
            job = self._calls.get()
            if job is None:
                return
            function, args, kwargs, box, done = job
            try:
                box["value"] = function(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting greenlet
                box["error"] = exc
            done.set()

    def call(self, function, *args, **kwargs):
        return self.wrap(self.call_raw(function, *args, **kwargs))

    def call_raw(self, function, *args, **kwargs):
        box: dict = {}
        done = _threading.Event()
        self._calls.put((function, args, kwargs, box, done))
        while not done.is_set():
            eventlet.sleep(0.002)
        if "error" in box:
            raise box["error"]
        return box["value"]

    def wrap(self, value):
        if isinstance(value, _PLAIN) and not isinstance(value, list | tuple | dict):
            return value
        if isinstance(value, list):
            return [self.wrap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.wrap(v) for v in value)
        if isinstance(value, dict):
            return {k: self.wrap(v) for k, v in value.items()}
        if type(value).__module__.startswith("playwright."):
            return _Proxy(self, value)
        return value

    def start(self):
        from playwright.sync_api import sync_playwright

        self._thread.start()

        def begin():
            # The driver's event loop waits on the thread's own, unpatched selector: the thread may block, the
            # main thread's hub goes on serving. (eventlet's green select loses wake-ups under asyncio.)
            import asyncio
            import asyncio.unix_events

            # asyncio reads the driver's pipe with os.read, which eventlet made green (it waits in a hub first);
            # asyncio only reads a pipe its selector found readable, so the original os.read is what it needs.
            # Only Playwright uses asyncio in these test processes.
            native = patcher.original("os")
            pipe_os = types.ModuleType("os")
            pipe_os.__dict__.update(asyncio.unix_events.os.__dict__)
            pipe_os.read, pipe_os.write = native.read, native.write
            asyncio.unix_events.os = pipe_os
            new_event_loop = asyncio.new_event_loop
            asyncio.new_event_loop = _native_event_loop
            try:
                self._manager = sync_playwright()
                return self._manager.start()
            finally:
                asyncio.new_event_loop = new_event_loop

        return self.call(begin)

    def stop(self, kill_driver):
        """End the driver the way the caller knows (``stop()`` waits forever under eventlet), then the thread."""
        self.call(kill_driver, self._manager)
        self._calls.put(None)


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs the loop's executor jobs (file writes of screenshots, downloads) inline: a pool thread would be an
    eventlet greenthread of this thread's hub, which never runs while the loop waits in the native poll()."""

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)
        return future


def _native_event_loop():
    import asyncio

    loop = asyncio.SelectorEventLoop(_NativePollSelector())
    loop.set_default_executor(_InlineExecutor(max_workers=1))
    return loop


class _Proxy:
    __slots__ = ("_runner", "_target")

    def __init__(self, runner: PlaywrightThread, target):
        object.__setattr__(self, "_runner", runner)
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name):
        runner, target = self._runner, self._target
        value = runner.call_raw(getattr, target, name)
        if callable(value) and not hasattr(value, "_impl_obj"):  # a method: call it on the thread
            return lambda *args, **kwargs: runner.call(value, *_unwrap(args), **_unwrap(kwargs))
        return runner.wrap(value)

    def __setattr__(self, name, value):
        self._runner.call(setattr, self._target, name, value)

    def __repr__(self):
        return f"<threaded {self._target!r}>"


def _unwrap(value):
    if isinstance(value, _Proxy):
        return value._target
    if isinstance(value, list | tuple):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value
