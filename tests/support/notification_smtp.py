"""An aiosmtpd handler for the notification tests: keeps each message as a file, refuses some recipients.

Run by ``notification_servers.SmtpServer`` as ``python -m aiosmtpd -c tests.support.notification_smtp.SavingHandler
DIR``, in a process of its own (aiosmtpd runs on asyncio; the tests run on eventlet).

- ``…@refused.invalid`` is refused with 550 (a permanent failure),
- ``…@busy.invalid`` with 451 (a transient one).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path


class SavingHandler:
    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("SavingHandler takes the directory to save messages in")
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.invalid"):
            return "550 5.1.1 mailbox unavailable"
        if address.endswith("@busy.invalid"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self._numbers)
        partial = self.directory / f".{number:05d}.partial"
        partial.write_bytes(envelope.original_content or envelope.content)
        os.replace(partial, self.directory / f"{number:05d}.eml")  # readers never see half a message
        return "250 Message accepted for delivery"
