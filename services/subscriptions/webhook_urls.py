"""Which webhook URLs a subscription may deliver to (pure; the name resolver is passed in).

- Production: ``https://`` only, to a host that resolves, and only to public addresses (a subscription must not
  make the service call into the city's own network: loopback, private, link-local and reserved addresses are
  refused).
- Development and tests: also ``http://`` to the local machine (``localhost``, ``127.0.0.1``, ``[::1]``), so a
  department's developer can run the example receiver.
- Never credentials in the URL (they would be shown in the subscription and the logs); never a fragment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from shared.refusal import Refusal

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

Resolver = Callable[[str, int], Iterable[str]]   # host, port -> the addresses it resolves to (raises OSError)


def check_webhook_url(url: str, *, production: bool, resolve: Resolver) -> str:
    """The URL as it will be called, or a 422 ``invalid_webhook_url`` / ``webhook_unreachable`` saying why."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("the URL does not parse") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise _invalid("a webhook URL is https://host/path")
    if parts.username is not None or parts.password is not None:
        raise _invalid("credentials do not belong in the URL; verify the webhook signature instead")
    if parts.fragment:
        raise _invalid("a webhook URL has no fragment")
    local = host in LOCAL_HOSTS
    if parts.scheme == "http" and (production or not local):
        raise _invalid("https:// is required" + ("" if production else
                                                 " (http:// only to localhost, in development)"))
    if local and production:
        raise _invalid("a production webhook cannot point at this machine")
    try:
        addresses = {str(address) for address in resolve(host, port or (443 if parts.scheme == "https" else 80))}
    except OSError:
        raise Refusal("webhook_unreachable", f"the webhook's host {host!r} does not resolve", status=422) from None
    if not addresses:
        raise Refusal("webhook_unreachable", f"the webhook's host {host!r} does not resolve", status=422)
    if production:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global:
                raise _invalid(f"the webhook's host resolves to a non-public address ({ip}); production "
                               "webhooks go to public https endpoints")
    return url


def _invalid(problem: str) -> Refusal:
    return Refusal("invalid_webhook_url", problem, status=422)


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (eventlet makes this cooperative)."""
    import socket

    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
