"""Staff pages: the queue of one's unit, an item with its history and 容缺 ledger, every action, the inbox."""

from __future__ import annotations

from nameko.web.handlers import http

from services.console.pages_base import pages
from services.console.web import render


class StaffPages:
    @http("GET", "/staff/queue")
    @pages
    def queue_page(self, request):
        user = self.require_user(request)
        return render("queue.html", user=user, csrf_token=user.csrf_token, nav="queue", items=[], total=0)
