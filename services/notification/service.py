"""Notification's nameko entrypoints: plan messages from events, send due ones on a timer, serve staff
(storage, clock, authentication and /health come from SanjiService).

The resident's phone and email stay in intake: the sweep asks ``intake.applicant_contact(case_id, purpose)``
over RPC when it sends (the phone for an SMS, the e-mail for an e-mail, nothing else), uses the answer for
that send only, and keeps a masked hint.
"""

from __future__ import annotations

import json

import eventlet
from nameko.exceptions import MethodNotFound, RemoteError
from werkzeug.wrappers import Response

from services.notification import handlers
from services.notification.api import notification_openapi
from services.notification.dependencies import Notifier, sweep_timer
from services.notification.handlers import BatchLookupUnsupported, Contact, ContactUnavailable
from services.notification.retention import retention_targets
from services.notification.schemas import DeliveryLog, InboxPage
from shared.http import ApiError, api_endpoint, json_response, page_of
from shared.logging import remember_personal_values
from shared.nameko_ext import consume_events
from shared.rpc import ServiceRpcProxy
from shared.service_base import SanjiService
from shared.topology import NOTIFICATION_EVENTS
from shared.web import http


class NotificationService(SanjiService):
    name = "notification"

    notifier = Notifier()
    intake = ServiceRpcProxy("intake")
    # Pruned with the kernel's tables by the retention pass (shared.retention).
    retention_targets = staticmethod(retention_targets)

    @consume_events(NOTIFICATION_EVENTS)
    def on_event(self, event):
        planned = handlers.handle_event(event, unit_of_work=self.storage.unit_of_work(self.clock),
                                        rules=self.notifier.rules)
        if planned:
            self.notifier.wake_sweep()
        return planned

    @sweep_timer("SANJI_NOTIFICATION_SWEEP_SECONDS", 1.0)
    def dispatch(self):
        return handlers.dispatch_due(unit_of_work_factory=lambda: self.storage.unit_of_work(self.clock),
                                     clock=self.clock, dispatcher=self.notifier.dispatcher,
                                     contacts=self._applicant_contact, run_all=self.notifier.run_all,
                                     contacts_of_cases=self._applicant_contacts,
                                     unrecorded=self.notifier.unrecorded)

    def _applicant_contact(self, case_id: str, purpose: str) -> Contact | None:
        timeout = eventlet.Timeout(self.notifier.settings.send_timeout)
        try:
            reply = self.intake.applicant_contact.call_async(case_id, purpose).result()
        except eventlet.Timeout as expired:
            if expired is not timeout:
                raise
            raise ContactUnavailable("intake did not answer in time") from None
        except Exception as exc:  # noqa: BLE001 - intake down, unknown, or failing: all mean "later"
            raise ContactUnavailable(f"intake could not be asked ({type(exc).__name__})") from None
        finally:
            timeout.cancel()
        if reply is None:
            return None
        remember_personal_values(reply.get("name"), reply.get("phone"), reply.get("email"))
        return Contact(phone=reply.get("phone"), email=reply.get("email"))

    def _applicant_contacts(self, case_ids: list[str], purpose: str) -> dict[str, Contact]:
        """One question for a sweep's batch: case id -> the contact (cases intake does not hold are absent)."""
        timeout = eventlet.Timeout(self.notifier.settings.send_timeout)
        try:
            reply = self.intake.applicant_contacts.call_async(case_ids, purpose).result()
        except eventlet.Timeout as expired:
            if expired is not timeout:
                raise
            raise ContactUnavailable("intake did not answer in time") from None
        except MethodNotFound:
            raise BatchLookupUnsupported() from None
        except RemoteError as exc:
            if exc.exc_type == "MethodNotFound":  # an intake of an earlier release, during a rolling upgrade
                raise BatchLookupUnsupported() from None
            raise ContactUnavailable(f"intake could not be asked ({exc.exc_type})") from None
        except Exception as exc:  # noqa: BLE001 - intake down, unknown, or failing: all mean "later"
            raise ContactUnavailable(f"intake could not be asked ({type(exc).__name__})") from None
        finally:
            timeout.cancel()
        remember_personal_values(*reply.values())
        field = {"sms": "phone", "email": "email"}[purpose]
        return {case_id: Contact(**{field: value}) for case_id, value in reply.items()}

    @http("GET", "/v1/inbox")
    @api_endpoint
    def get_inbox(self, request):
        principal = self.authenticate(request)
        limit, offset = page_of(request)
        rows, total = handlers.inbox(principal, unit=request.args.get("unit"), limit=limit, offset=offset,
                                     unit_of_work=self.storage.unit_of_work(self.clock),
                                     catalogue=self.notifier.catalogue)
        return json_response(200, InboxPage(messages=rows, total=total))

    @http("GET", "/v1/deliveries")
    @api_endpoint
    def get_deliveries(self, request):
        principal = self.authenticate(request)
        case_id = request.args.get("case_id", "").strip()
        if not case_id:
            raise ApiError(400, "invalid_query", "say which case: ?case_id=...")
        deliveries = handlers.delivery_log(principal, case_id, unit_of_work=self.storage.unit_of_work(self.clock),
                                        catalogue=self.notifier.catalogue)
        return json_response(200, DeliveryLog(case_id=case_id, deliveries=deliveries))

    @http("GET", "/openapi.json")
    def openapi(self, request):
        return Response(json.dumps(notification_openapi(), ensure_ascii=False), content_type="application/json")
