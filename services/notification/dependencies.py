"""Notification's nameko dependencies: rules, templates and channels built and checked once, at start.

A broken template, a missing variable, an SMS kind without a provider template (or a provider template's
parameter that is missing or fails), an unknown webhook scope or an invalid setting raises in
``setup``, so the service does not start, rather than failing when a resident's message is due.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import eventlet
import structlog
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from services.notification import domain, samples
from services.notification.adapters.channels import AliyunSms, FileSink, SmsGateway, SmtpEmail, WebhookSender
from services.notification.handlers import Dispatcher, NotificationRules, UnrecordedAttempts
from services.notification.rendering import MessageTemplates, TemplateProblems
from services.notification.settings import NotificationConfigError, NotificationSettings
from services.notification.sms_templates import SmsTemplateProblems, SmsTemplates
from shared.catalogue import Catalogue, UnknownCode, load_catalogue

log = structlog.get_logger(__name__)


def _within(catalogue: Catalogue):
    def within(unit: str, scope: str) -> bool:
        try:
            return catalogue.is_within(unit, scope)
        except UnknownCode:
            return False

    return within


def check_webhooks(settings: NotificationSettings, catalogue: Catalogue) -> None:
    department_kinds = {rule.kind for rules in domain.RULES.values() for rule in rules if rule.audience == "department"}
    for hook in settings.webhooks:
        if hook.scope is not None and hook.scope not in catalogue.units:
            raise NotificationConfigError(f"webhook {hook.name}: scope {hook.scope} is not a unit of the catalogue")
        if hook.department is not None and hook.department not in catalogue.departments:
            raise NotificationConfigError(f"webhook {hook.name}: department {hook.department!r} is not in the "
                                          "catalogue")
        unknown = set(hook.kinds) - department_kinds
        if unknown:
            known = ", ".join(sorted(department_kinds))
            raise NotificationConfigError(f"webhook {hook.name}: no department message kind "
                                          f"{', '.join(sorted(unknown))} (known: {known})")


def check_templates(templates: MessageTemplates, names: domain.Names) -> None:
    events = samples.sample_events()
    problems = templates.check(domain.template_keys(), domain.sample_renderings(events, names))
    problems += [f"no sample event for {event_type} in services/notification/samples.py"
                 for event_type in sorted(domain.event_types_without_samples(events))]
    if problems:
        raise TemplateProblems(templates.directory, problems)


def check_sms_templates(sms_templates: SmsTemplates, names: domain.Names) -> None:
    """Every kind the rules send by SMS has a provider template whose parameters render for the sample events."""
    kinds = {kind for kind, channel in domain.template_keys() if channel == "sms"}
    problems = sms_templates.check(kinds, domain.sample_renderings(samples.sample_events(), names))
    if problems:
        raise SmsTemplateProblems(sms_templates.source, problems)


def build_senders(settings: NotificationSettings, sms_templates: SmsTemplates) -> dict:
    if settings.sms_url and settings.sms_provider == "aliyun":
        sms = AliyunSms(settings.sms_url, settings.sms_access_key_id or "", settings.sms_access_key_secret or "",
                        sign_name=sms_templates.sign_name, timeout=settings.send_timeout)
    elif settings.sms_url:
        sms = SmsGateway(settings.sms_url, settings.sms_api_key, timeout=settings.send_timeout,
                         sign_name=sms_templates.sign_name)
    else:
        sms = FileSink(settings.sms_sink, "sms")
    if settings.smtp_host:
        email = SmtpEmail(settings.smtp_host, settings.smtp_port, sender=settings.email_from,
                          timeout=settings.send_timeout, username=settings.smtp_username,
                          password=settings.smtp_password, starttls=settings.smtp_starttls)
    else:
        email = FileSink(settings.email_sink, "email")
    return {"sms": sms, "email": email, "webhook": WebhookSender(timeout=settings.send_timeout)}


class WithholdRpcReplyBodies(logging.Filter):
    """nameko logs every RPC reply body at DEBUG ("RPC reply event complete <reply> <body>"). Intake's
    answer to ``applicant_contact`` is the resident's phone or e-mail address: keep the line, drop the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("RPC reply event complete") and isinstance(record.args, tuple):
            record.args = (*record.args[:1], "[reply body withheld]")
        return True


def withhold_rpc_reply_bodies() -> None:
    rpc_logger = logging.getLogger("nameko.rpc")
    if not any(isinstance(existing, WithholdRpcReplyBodies) for existing in rpc_logger.filters):
        rpc_logger.addFilter(WithholdRpcReplyBodies())


def _rating_link(settings: NotificationSettings):
    """The signer of 好差评 links in the completion SMS, or None when no rating page or key is configured."""
    if not settings.rating_link_base or not settings.rating_link_key:
        return None
    from datetime import timedelta

    from shared.rating_links import sign_rating_link

    def link(case_id: str, completed_at) -> str:
        token = sign_rating_link(settings.rating_link_key, case_id=case_id,
                                 expires_at=completed_at + timedelta(days=settings.rating_link_days))
        return settings.rating_link_base.rstrip("/") + "/" + token

    return link


class Notifier(DependencyProvider):
    """``self.notifier.rules`` (planning), ``.dispatcher`` (sending), ``.settings``, ``.catalogue``."""

    def setup(self):
        withhold_rpc_reply_bodies()
        config = self.container.config
        self.settings = NotificationSettings.from_config(config)
        self.catalogue = load_catalogue(config["SANJI_CATALOGUE_DIR"])
        names = domain.CatalogueNames(self.catalogue, rating_link=_rating_link(self.settings))
        check_webhooks(self.settings, self.catalogue)
        templates = MessageTemplates(self.settings.templates_dir)
        check_templates(templates, names)
        sms_templates = SmsTemplates.load(self.settings.sms_templates_file)
        check_sms_templates(sms_templates, names)
        self.rules = NotificationRules(names=names, templates=templates, webhooks=self.settings.webhooks,
                                       within=_within(self.catalogue), quiet_hours=self.settings.quiet_hours,
                                       sms_templates=sms_templates)
        senders = build_senders(self.settings, sms_templates)
        self.dispatcher = Dispatcher(
            senders=senders, webhooks={hook.name: hook for hook in self.settings.webhooks},
            limiter=domain.RateLimiter(self.settings.rate_limits), retry=self.settings.retry,
            quiet_hours=self.settings.quiet_hours, rng=random.SystemRandom(), batch_size=self.settings.batch_size,
            lease=timedelta(seconds=self.settings.lease_seconds))
        self.unrecorded = UnrecordedAttempts()
        quiet = self.settings.quiet_hours
        log.info("notification channels ready", **{channel: sender.description for channel, sender in senders.items()},
                 webhooks=len(self.settings.webhooks),
                 quiet_hours=f"{quiet.start:%H:%M}-{quiet.end:%H:%M}" if quiet.enabled else "off")

    def wake_sweep(self) -> None:
        """Deliveries were planned: let this process's sweep send them now."""
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, SweepTimer):
                entrypoint.wake()

    def run_all(self, function, items):
        """Send a batch concurrently, at most ``SANJI_NOTIFICATION_CONCURRENCY`` at a time."""
        return eventlet.GreenPool(self.settings.concurrency).imap(function, items)

    def get_dependency(self, worker_ctx):
        return self


class SweepTimer(Timer):
    """nameko's timer, its interval read from the container config (so tests and operators can set it), that
    can also be woken: planning wakes it after committing deliveries, so they go out at once instead of at
    the next tick, and the interval only bounds how long a retry or another replica's row waits.

    It fires in every replica; the sweep's row locks make that safe. A wake during a sweep makes one more
    sweep right after it (wakes in between are one)."""

    def __init__(self, setting: str, default: float, **kwargs):
        self.setting = setting
        self._signal = Event()
        super().__init__(interval=default, eager=True, **kwargs)

    def setup(self):
        configured = self.container.config.get(self.setting)
        if configured not in (None, ""):
            self.interval = float(configured)

    def wake(self) -> None:
        if not self._signal.ready():
            self._signal.send(True)

    def stop(self):
        self.should_stop.send(True)
        self.wake()
        self.gt.wait()

    def _run(self):
        sleep_time = 0 if self.eager else self.interval
        while True:
            with eventlet.Timeout(sleep_time, exception=False):
                self._signal.wait()
            if self.should_stop.ready():
                break
            if self._signal.ready():
                self._signal.reset()
            self.handle_timer_tick()
            self.worker_complete.wait()
            self.worker_complete.reset()
            sleep_time = self.interval


sweep_timer = SweepTimer.decorator
