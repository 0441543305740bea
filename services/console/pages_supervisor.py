"""The supervisor desk (street and district offices): warnings, breaches, 吹哨, 办不成事, ping-pong, report."""

from __future__ import annotations

from nameko.web.handlers import http

from services.console.pages_base import pages
from services.console.web import render


class SupervisorPages:
    @http("GET", "/supervisor")
    @pages
    def desk_page(self, request):
        user = self.require_user(request, "supervisor", "admin")
        return render("desk.html", user=user, csrf_token=user.csrf_token, nav="desk")
