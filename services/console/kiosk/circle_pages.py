"""The 15-minute service circle on the console's pages: the kiosk's 附近哪里能办 screen (``/kiosk/circle``), the
public page (``/circle``, no login), and the nearby lists the receipt and the lookup show.

Every answer is intake's (``GET /v1/service-circle``, ``GET /v1/service-points/{id}``), asked over HTTP: a kiosk
asks with its own device token, the public page and the lookup with the console's service token. The rules of
what the page shows are in ``circle.py``.

``CirclePages`` is a mixin of ``ConsoleService`` beside ``KioskPages`` and uses its helpers (``_device``,
``_page``, ``_unavailable``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from werkzeug.wrappers import Response

from services.console.kiosk import checklist
from services.console.kiosk.backend import Device, IntakeUnavailable, KioskBackend, KioskBackendProvider
from services.console.kiosk.circle import MAX_QUERY_VALUE, CircleList, Place, circle_list, problem_message
from services.console.web import redirect, render
from shared.web import http

RECEIPT_ROWS = 3   # the receipt lists the nearest few; the circle screen lists them all


def nearby(backend: KioskBackend, token: str, place: Place, matter_code: str) -> CircleList | None:
    """The circle around ``place`` for one matter, now; None when intake refuses the question."""
    answer = backend.service_circle(token, {"lat": place.lat, "lon": place.lon, "matter": matter_code})
    if not answer.ok:
        return None
    return circle_list(answer.body, accepted_anywhere=matter_code in backend.places.accepted)


def nearby_for_matters(backend: KioskBackend, token: str, place: Place | None,
                       matter_codes: Iterable[str]) -> list[CircleList]:
    if place is None:
        return []
    lists = (nearby(backend, token, place, code) for code in dict.fromkeys(matter_codes))
    return [found for found in lists if found is not None]


def nearby_for_receipt(backend: KioskBackend, device: Device, matter_codes: Iterable[str]) -> list[CircleList]:
    """The receipt's 附近15分钟可办: for each matter of the case, around the kiosk. Intake down: nothing."""
    try:
        return nearby_for_matters(backend, device.token,
                                  backend.places.for_device(device.community_code, device.service_point_id),
                                  matter_codes)
    except IntakeUnavailable:
        return []


def nearby_for_lookup(backend: KioskBackend, result: Mapping) -> list[CircleList]:
    """The lookup's 附近可补交材料: for each item still waiting for material, around the case's community."""
    waiting = [item["matter_code"] for item in result.get("items", []) if item.get("missing_materials")]
    if not waiting:
        return []
    try:
        return nearby_for_matters(backend, backend.console_token,
                                  backend.places.by_community.get(result.get("community_code") or ""), waiting)
    except IntakeUnavailable:
        return []


def _value(args, name: str) -> str:
    return (args.get(name) or "").strip()[:MAX_QUERY_VALUE]


class CirclePages:
    kiosk_backend = KioskBackendProvider()

    # ── the kiosk: 附近哪里能办 ────────────────────────────────────────────────────────────────────────────
    @http("GET", "/kiosk/circle")
    def kiosk_circle(self, request):
        device = self._device(request)
        if device is None:
            return redirect("/kiosk/register")
        backend = self.kiosk_backend
        place = backend.places.for_device(device.community_code, device.service_point_id)
        try:
            catalogue = backend.catalogue(device)
            if place is None:
                return self._page(request, "kiosk/message.html", status=404, device=device,
                                  heading="本终端未设置位置", message="无法查询附近的服务点，请咨询社区工作人员。")
            bundle, matter = _value(request.args, "bundle"), _value(request.args, "matter")
            if not bundle and not matter:
                matters = [m for m in catalogue["matters"] if m["code"] in backend.places.accepted]
                return self._page(request, "kiosk/circle_pick.html", device=device, place=place, matters=matters)
            try:
                application = checklist.application_for(catalogue, bundle=bundle or None,
                                                         matter=None if bundle else matter)
            except checklist.UnknownChoice:
                return self._page(request, "kiosk/message.html", status=404, device=device,
                                  heading="没有找到这个事项", message="请回到首页重新选择。")
            lists = nearby_for_matters(backend, device.token, place, (code for code, _ in application.matters))
        except IntakeUnavailable:
            return self._unavailable(request, device)
        back = (f"/kiosk/apply?{application.kind}={application.code}" if request.args.get("from") == "apply"
                else None)
        return self._page(request, "kiosk/circle.html", device=device, place=place, application=application,
                          lists=lists, back=back)

    # ── the public page ────────────────────────────────────────────────────────────────────────────────────
    @http("GET", "/circle")
    def public_circle(self, request):
        backend = self.kiosk_backend
        args = request.args
        values = {name: _value(args, name) for name in ("matter", "place", "community", "lat", "lon", "point")}
        values["place"] = values["place"] if values["place"] in ("community", "coordinates", "point") else "community"
        errors: dict[str, str] = {}
        lists: list[CircleList] = []
        place: Place | None = None
        try:
            catalogue = backend.catalogue()
            asked = "matter" in args
            if asked:
                if values["place"] == "community":
                    place = backend.places.by_community.get(values["community"])
                    if place is None:
                        errors["community"] = "请选择您所在的社区。"
                elif values["place"] == "point":
                    answer = backend.service_point(backend.console_token, values["point"] or "-")
                    if answer.ok:
                        place = Place(answer.body["lat"], answer.body["lon"], answer.body["name"])
                    else:
                        errors["point"] = problem_message(answer.body)[1]
                if not errors:
                    params = ({"lat": place.lat, "lon": place.lon} if place is not None
                              else {"lat": values["lat"], "lon": values["lon"]})
                    answer = backend.service_circle(backend.console_token, {**params, "matter": values["matter"]})
                    if answer.ok:
                        lists = [circle_list(answer.body,
                                             accepted_anywhere=answer.body["matter_code"] in backend.places.accepted)]
                        if place is None:
                            place = Place(float(values["lat"]), float(values["lon"]), "您给出的位置")
                    else:
                        field, message = problem_message(answer.body)
                        errors[field] = message
        except IntakeUnavailable:
            return self._public_circle_page(status=503, catalogue=None, values=values, errors={
                "_form": "系统暂时无法查询，请稍后再试。"}, lists=[], place=None)
        return self._public_circle_page(status=422 if errors else 200, catalogue=catalogue, values=values,
                                        errors=errors, lists=lists, place=place)

    def _public_circle_page(self, *, status: int, catalogue: Mapping | None, values, errors, lists,
                            place) -> Response:
        matters = [m for m in (catalogue or {}).get("matters", [])]
        matters.sort(key=lambda m: (m["code"] not in self.kiosk_backend.places.accepted, m["code"]))
        return render("kiosk/circle_public.html", status=status, matters=matters,
                      communities=self.kiosk_backend.places.communities, values=values, errors=errors,
                      lists=lists, place=place, idle_seconds=0, device=None)
