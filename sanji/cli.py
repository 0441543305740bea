"""The `sanji` command: run, migrate and inspect the services.

    sanji run-all                 every service, each in its own process, on the defaults (make run)
    sanji serve SERVICE           one service in the foreground (what a container runs)
    sanji migrate SERVICE|all     bring a service's tables to the latest schema
    sanji wait-for-deps           wait until the broker and the database answer
    sanji declare-topology        declare exchanges and queues on the broker
    sanji bus setup|definitions   create the development bus users; print a city's broker definitions
    sanji check-catalogue [DIR]   load and validate a catalogue, naming any broken entry
    sanji dead-letters list|replay  what could not be handled; send it back after a fix
    sanji prune [SERVICE]         one retention pass now (published outbox rows, processed-message records,
                                  finished notifications), one line per table with the rows removed
    sanji write-docs [DIR]        regenerate the OpenAPI (docs/openapi/), AsyncAPI, event-types and settings documents
    sanji settings                every variable: type, default, who reads it, meaning (docs/settings.md)
    sanji report --from D --to D --out DIR   办不成事 and escalation figures for a period: CSV and an HTML page
    sanji calendar show YEAR      the year's days off and 调休 days, and whether they are official or derived
    sanji calendar load FILE      validate a holiday arrangement file and install it as SANJI_CALENDAR_OVERRIDES
                                  (running services pick it up without a restart and revise the
                                  provisional deadlines they stored)
    sanji keys rotate|generate    re-encrypt applicants under the current key; print a new random key
    sanji check-production [SERVICE]  what the production profile would refuse, one line each
    sanji users add|disable|enable|list   personal staff accounts of the console
    sanji audit-export [--from D] [--to D]  the console's audit trail (logins, actions) as CSV
"""

from __future__ import annotations

import warnings

# We chose eventlet through nameko 2.14; its deprecation notice is for new projects, not our users.
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet

eventlet.monkey_patch()  # nameko runs on eventlet; patch before anything opens a socket

import argparse
import errno
import importlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.config import (
    RATING_LINK_BASE,
    SERVICES,
    Settings,
    SettingsInvalid,
    development_rating_link_base,
    nameko_config,
)

SERVICE_CLASSES = {
    "intake": "services.intake.service:IntakeService",
    "routing": "services.routing.service:RoutingService",
    "notification": "services.notification.service:NotificationService",
    "escalation": "services.escalation.service:EscalationService",
    "evaluation": "services.evaluation.service:EvaluationService",
    "console": "services.console.service:ConsoleService",
    "subscriptions": "services.subscriptions.service:SubscriptionsService",
}


class CommandFailed(Exception):
    """A problem the user can act on: printed as one line, exit status 1, no traceback."""


class ConfigurationRefused(CommandFailed):
    """Several problems with the settings: printed one line each, exit status 2, no traceback."""

    exit_status = 2

    def __init__(self, service: str | None, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s)")
        self.lines = [f"{service or 'sanji'}: refused: {problem}" for problem in problems]


def require_valid_service_settings(service: str, settings: Settings) -> None:
    """The service's own settings (services/<name>/settings.py), checked before anything starts, so a bad
    value is one line naming it rather than a traceback from inside the container's start."""
    from sanji.settings_reference import SERVICE_SETTINGS

    SERVICE_SETTINGS[service].read(nameko_config(service, settings))


def require_fit_settings(service: str | None, settings: Settings) -> None:
    """The production profile fails closed (shared/production.py); any profile refuses broken keys."""
    from shared.crypto import KeyConfigError, keyring_from_config
    from shared.production import is_production, production_problems, profile_problems

    problems = profile_problems(settings)
    if not problems and is_production(settings):
        problems = production_problems(service, settings)
    if not problems and service == "intake":  # the one service that needs keys
        try:
            keyring_from_config(nameko_config("intake", settings))
        except KeyConfigError as exc:
            problems = [str(exc)]
    if problems:
        raise ConfigurationRefused(service, problems)


def _service_class(service: str):
    module_name, _, class_name = SERVICE_CLASSES[service].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _configure_logging(settings: Settings) -> None:
    from shared.logging import configure_logging

    configure_logging(settings.log_format, settings.log_level)


def require_broker(settings: Settings) -> None:
    from kombu.utils.url import maybe_sanitize_url

    from shared.health import broker_reachable

    if not broker_reachable(settings.amqp_uri, timeout=3):
        raise CommandFailed(
            f"RabbitMQ is not reachable at {maybe_sanitize_url(settings.amqp_uri)}: start it with "
            "`rabbitmq-server -detached` (or point SANJI_AMQP_URI at a running broker)")


def require_topology(settings: Settings) -> None:
    """Declare the topology once before serving (or, as a service's own broker user, which may not declare,
    check it is there), so a broker holding an older, incompatible topology (a queue declared with other
    arguments) or none is reported in one line instead of a reconnect loop."""
    from amqp.exceptions import PreconditionFailed
    from kombu import Connection

    from shared.topology import TopologyMissing, ensure_topology

    try:
        with Connection(settings.amqp_uri) as connection:
            ensure_topology(connection)
    except TopologyMissing as exc:
        raise CommandFailed(str(exc)) from None
    except PreconditionFailed as exc:
        raise CommandFailed(
            f"RabbitMQ holds a queue declared differently from this version's topology ({exc.reply_text}). "
            "Drain it, then delete it (rabbitmqctl delete_queue NAME) so it is declared anew.") from None


def check_catalogue(settings: Settings) -> str:
    from shared.catalogue import CatalogueError, load_catalogue
    from shared.service_points import SERVICE_POINTS_FILE, load_service_points
    from shared.workdays import CalendarFileError, WorkdayCalendar

    try:
        catalogue = load_catalogue(settings.catalogue_dir)
        WorkdayCalendar.from_file(settings.calendar_overrides)
        # The 15-minute circle's points: the named file, else the catalogue's own, if it has one.
        named = os.environ.get("SANJI_SERVICE_POINTS_FILE", "").strip()
        points_file = named or pathlib.Path(settings.catalogue_dir) / SERVICE_POINTS_FILE
        if named or pathlib.Path(points_file).exists():
            load_service_points(points_file, catalogue)
    except (CatalogueError, CalendarFileError, OSError) as exc:
        raise CommandFailed(f"configuration refused: {exc}") from None
    return catalogue.version


SERVICE_DIED_EXIT_STATUS = 70       # EX_SOFTWARE: the service failed, restart it
CONTAINER_DEATH_GRACE_SECONDS = 10


def dump_green_stacks(out) -> int:
    """Write where every green thread is waiting (``kill -USR1 <pid>`` of a ``sanji serve``): a process that
    stopped working but stays up shows its blocked workers, which no OS-thread dumper (py-spy, faulthandler)
    sees. File, line and function only: no local values, so no personal data."""
    import gc
    import traceback

    import greenlet

    stacks = [g for g in gc.get_objects() if isinstance(g, greenlet.greenlet) and g.gr_frame is not None]
    print(f"sanji: {len(stacks)} green threads (SIGUSR1)", file=out)
    for number, green in enumerate(stacks, 1):
        print(f"--- green thread {number}: {green!r}", file=out)
        out.write("".join(traceback.format_stack(green.gr_frame)))
    out.flush()
    return len(stacks)


def run_until_stopped(service_class, config: dict) -> None:
    """Run one service until SIGTERM or SIGINT, then stop it gracefully, once; exit non-zero if the
    service's container dies on its own.

    nameko's own ``run`` starts a new graceful stop for every signal it receives. A second signal (Ctrl-C
    in a terminal reaches the whole process group, and supervisors may signal again) makes nameko stop
    its timers twice, which raises inside the stop and leaves the process hanging. Here the first signal
    starts the stop and later ones are ignored.

    A container that kills itself (an extension's thread died) consumes nothing more, while its process
    would stay up. The process exits instead, status 70, so that its supervisor (``sanji run-all``,
    Kubernetes) restarts it; it waits for the kill to finish for at most ``CONTAINER_DEATH_GRACE_SECONDS``.
    """
    from nameko.runners import ServiceRunner

    from shared.broker_faults import exit_when_dying

    runner = ServiceRunner(config)
    runner.add_service(service_class)
    stopping = False

    def stop_once(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            eventlet.spawn_n(runner.stop)  # signal handlers run outside any greenthread

    def exit_on_death(container, error):
        if stopping:
            return
        reason = f"{type(error).__name__}: {str(error)[:200]}" if error is not None else "killed"
        print(f"sanji: the {container.service_name} service stopped working ({reason}); exiting so that "
              f"its supervisor restarts it", file=sys.stderr, flush=True)
        os._exit(SERVICE_DIED_EXIT_STATUS)  # no clean-up left to do: the container is dead

    signal.signal(signal.SIGTERM, stop_once)
    signal.signal(signal.SIGINT, stop_once)
    signal.signal(signal.SIGUSR1, lambda signum, frame: dump_green_stacks(sys.stderr))
    runner.start()
    exit_when_dying(runner.containers, exit_on_death, grace_seconds=CONTAINER_DEATH_GRACE_SECONDS)
    waiter = eventlet.spawn(runner.wait)
    while True:
        try:
            waiter.wait()
            return
        except OSError as exc:  # a signal interrupting the hub's wait; the handler has done its work
            if exc.errno != errno.EINTR:
                raise
        except Exception:  # noqa: BLE001 - the container died; exit_on_death reports it and exits
            eventlet.sleep(CONTAINER_DEATH_GRACE_SECONDS + 1)
            raise


def cmd_serve(args) -> None:
    settings = Settings.from_env(args.service)
    require_valid_service_settings(args.service, settings)
    require_fit_settings(args.service, settings)
    _configure_logging(settings)
    check_catalogue(settings)
    require_broker(settings)
    require_topology(settings)
    run_until_stopped(_service_class(args.service), nameko_config(args.service, settings))


def migration_database_url(settings: Settings) -> str:
    """Where migrations run: SANJI_MIGRATION_DATABASE_URL when set, else the service's own database URL.

    Migrations hold a session-level advisory lock (shared/migrate.py), which a transaction-pooling PgBouncer
    cannot keep; deploy/k8s points the services at such a pooler and their migrations straight at PostgreSQL."""
    return settings.migration_database_url or settings.database_url


def cmd_migrate(args) -> None:
    from shared.crypto import KeyConfigError
    from shared.migrate import migrate

    for service in SERVICES if args.service == "all" else [args.service]:
        try:
            migrate(service, migration_database_url(Settings.from_env(service)))
        except KeyConfigError as exc:  # intake's rows are encrypted on the way (intake_0005, intake_0006)
            raise CommandFailed(f"{service}: cannot encrypt the stored personal data: {exc}") from None
        print(f"{service}: schema up to date")


def cmd_wait_for_deps(args) -> None:
    from shared.db import create_db_engine
    from shared.health import broker_reachable, database_reachable

    settings = Settings.from_env(args.service)
    engine = create_db_engine(settings.database_url)
    deadline = time.monotonic() + args.timeout
    while True:
        broker, database = broker_reachable(settings.amqp_uri), database_reachable(engine)
        if broker and database:
            return
        if time.monotonic() > deadline:
            missing = " and ".join(name for name, ok in (("broker", broker), ("database", database)) if not ok)
            raise CommandFailed(f"gave up after {args.timeout}s waiting for the {missing}")
        time.sleep(1)


def cmd_declare_topology(args) -> None:
    from amqp.exceptions import AccessRefused
    from kombu import Connection

    from shared.topology import DEAD_LETTER_POLICY_NAME, declare_topology

    settings = Settings.from_env()
    require_broker(settings)
    try:
        with Connection(settings.amqp_uri) as connection:
            legacy = declare_topology(connection)
    except AccessRefused as exc:
        raise CommandFailed(f"the broker refused ({exc.reply_text}): declare the topology as the broker's "
                            "administrator; a service's own user may not (docs/security.md)") from None
    print("topology declared")
    if legacy:
        print(f"{len(legacy)} queue(s) an older release declared ({', '.join(legacy)}) dead-letter at least once "
              f"only under the broker policy {DEAD_LETTER_POLICY_NAME!r}: `sanji bus setup` applies it")


def cmd_bus(args) -> None:
    """`sanji bus setup`: as the broker's administrator (SANJI_AMQP_URI), declare the topology and create the
    development bus users; `sanji bus definitions --tokens FILE`: print a city's definitions (no passwords)."""
    from sanji.settings_reference import CommandVariables
    from shared import bus

    settings = Settings.from_env()
    commands = CommandVariables.from_env()
    if args.action == "definitions":
        tokens = args.tokens or settings.tokens_file
        print(json.dumps(bus.full_definitions(tokens_file=tokens), indent=2))
        return
    require_broker(settings)
    require_topology(settings)
    _, account = bus.dev_bus_environment(
        settings.amqp_uri, tokens_file=settings.tokens_file,
        passwords_file=str(commands.dev_bus_users_file), management_url=commands.rabbit_management_url,
        prefix=commands.dev_bus_user_prefix)
    print(account)
    if not account.startswith("bus: each service"):
        raise CommandFailed("the development bus users were not created")


def cmd_check_catalogue(args) -> None:
    settings = Settings.from_env()
    if args.directory:
        settings = settings.model_copy(update={"catalogue_dir": Path(args.directory)})
    print(f"catalogue {check_catalogue(settings)} is valid")


def cmd_calendar(args) -> None:
    from datetime import date, timedelta

    from shared.statutory_holidays import FIRST_YEAR, LAST_YEAR, statutory_periods
    from shared.workdays import CalendarFileError, WorkdayCalendar, read_calendar_file

    settings = Settings.from_env()
    target = Path(args.target) if getattr(args, "target", None) else Path(settings.calendar_overrides)
    if args.action == "load":
        source = Path(args.file)
        try:
            overrides, covered_years = read_calendar_file(source)
        except CalendarFileError as exc:
            raise CommandFailed(f"calendar file refused: {exc}") from None
        # The State Council arranges around the law, never against it: every statutory day is off.
        for year in sorted(covered_years):
            if not FIRST_YEAR <= year <= LAST_YEAR:
                continue
            for period in statutory_periods(year):
                worked = [day for day in period.statutory_days if overrides.get(day, day.weekday() < 5)]
                if worked:
                    raise CommandFailed(
                        f"calendar file refused: {source}: years.{year}: {period.name} "
                        f"{', '.join(map(str, worked))} is a statutory holiday (全国年节及纪念日放假办法) "
                        "but is not listed under holidays")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(source.read_bytes())
        os.replace(temporary, target)  # atomic: a service never reads half a file
        listed = ", ".join(str(year) for year in sorted(covered_years)) or "none"
        print(f"installed {source} as {target} (years with the official arrangement: {listed}); "
              "running services reload it on their next deadline computation, and within a minute revise "
              "the provisional deadlines they store")
        return
    year = args.year
    try:
        calendar = WorkdayCalendar.from_file(target, reload_on_change=False)
    except CalendarFileError as exc:
        raise CommandFailed(str(exc)) from None
    official = calendar.covers(year)
    print(f"{year}: {'official arrangement loaded' if official else 'PROVISIONAL: derived from the law, 调休 unknown'}")
    names = {} if official or not FIRST_YEAR <= year <= LAST_YEAR else calendar.provisional_days_off(year)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        day = date(year, 1, 1)
        while day.year == year:
            workday = calendar.is_workday(day)
            if not workday and day.weekday() < 5:
                print(f"  {day} {day:%a}  off   {names.get(day, '')}".rstrip())
            elif workday and day.weekday() >= 5:
                print(f"  {day} {day:%a}  worked (调休)")
            day += timedelta(days=1)


MAX_RESTARTS_IN_WINDOW = 5
RESTART_WINDOW_SECONDS = 60


def cmd_run_all(args) -> None:
    """Migrate, then run each service as its own process, as devops would: one that exits on its own is
    started again; Ctrl-C stops them all."""
    settings = Settings.from_env()
    for service in SERVICES:
        require_valid_service_settings(service, Settings.from_env(service))
        require_fit_settings(service, Settings.from_env(service))
    version = check_catalogue(settings)
    require_broker(settings)
    require_topology(settings)
    cmd_migrate(argparse.Namespace(service="all"))
    environment = dict(os.environ)
    if not any(os.environ.get(f"SANJI_{service.upper()}_AMQP_URI") for service in SERVICES) \
            and not os.environ.get("SANJI_BUS_USERS"):
        from sanji.settings_reference import CommandVariables
        from shared.bus import dev_bus_environment

        commands = CommandVariables.from_env()
        bus_environment, account = dev_bus_environment(
            settings.amqp_uri, tokens_file=settings.tokens_file,
            passwords_file=str(commands.dev_bus_users_file), management_url=commands.rabbit_management_url,
            prefix=commands.dev_bus_user_prefix)
        environment.update(bus_environment)
        if bus_environment and commands.dev_bus_user_prefix:  # the departments' streams are named after their users
            environment.setdefault("SANJI_SUBSCRIPTIONS_BROKER_USER_PREFIX", commands.dev_bus_user_prefix)
        print(account, flush=True)
    intake_port = Settings.from_env("intake").http_port
    console_settings = Settings.from_env("console")
    rating_page = development_rating_link_base(environment, console_settings)
    if rating_page:  # development: the completion SMS links to the console's 好差评 page
        environment[RATING_LINK_BASE] = rating_page
    made = _console_store(console_settings).ensure_development_accounts() \
        if console_settings.profile != "production" else []
    print(f"catalogue {version}; kiosk API on http://{settings.http_host}:{intake_port}/v1 "
          f"(OpenAPI at /openapi.json); Ctrl-C stops everything", flush=True)
    print(f"console on http://{console_settings.http_host}:{console_settings.http_port}/ "
          f"(development login: dev-window / sanji-dev-password{'; accounts created' if made else ''})", flush=True)
    if rating_page:
        print(f"completion SMS carry 好差评 links to {rating_page}<token> ({RATING_LINK_BASE})", flush=True)
    # Each service in its own session: a Ctrl-C in the terminal reaches only this process, which then
    # stops every service once, instead of each service also receiving the signal directly.
    def start(service: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "sanji.cli", "serve", service], start_new_session=True,
                                env=environment)

    processes = {service: start(service) for service in SERVICES}
    recent_restarts: dict[str, list[float]] = {service: [] for service in SERVICES}
    stopping = False

    def stop_all(*_):
        nonlocal stopping
        stopping = True
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    gave_up = None
    while True:
        for service, process in list(processes.items()):
            code = process.poll()
            if code is None or stopping:
                continue
            # A supervisor's job: a service that stops on its own is started again, unless it keeps
            # failing (then something is wrong that a restart does not fix, and everything stops).
            now = time.monotonic()
            recent = [at for at in recent_restarts[service] if now - at < RESTART_WINDOW_SECONDS] + [now]
            recent_restarts[service] = recent
            if len(recent) > MAX_RESTARTS_IN_WINDOW:
                gave_up = f"{service} exited {len(recent)} times within {RESTART_WINDOW_SECONDS}s (last status {code})"
                print(f"{gave_up}; stopping the others", file=sys.stderr, flush=True)
                stop_all()
                break
            print(f"{service} exited with status {code}; starting it again", file=sys.stderr, flush=True)
            processes[service] = start(service)
        if all(process.poll() is not None for process in processes.values()):
            break
        time.sleep(0.2)
    if gave_up:
        raise CommandFailed(gave_up)


def cmd_write_docs(args) -> None:
    """Regenerate the committed API documents (a test fails when they drift from the models)."""
    import json
    from pathlib import Path

    from services.escalation.api import escalation_openapi
    from services.evaluation.api import evaluation_openapi
    from services.intake.api import intake_openapi
    from services.notification.api import notification_openapi
    from services.routing.api import routing_openapi
    from services.subscriptions.api import subscriptions_openapi
    from shared.asyncapi import asyncapi_document
    from shared.event_catalogue import event_types

    docs = Path(args.directory)
    (docs / "openapi").mkdir(parents=True, exist_ok=True)
    for name, document in (("openapi/intake.json", intake_openapi()), ("openapi/routing.json", routing_openapi()),
                           ("openapi/escalation.json", escalation_openapi()),
                           ("openapi/notification.json", notification_openapi()),
                           ("openapi/evaluation.json", evaluation_openapi()),
                           ("openapi/subscriptions.json", subscriptions_openapi()),
                           ("asyncapi.json", asyncapi_document()), ("event-types.json", event_types())):
        (docs / name).write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {docs / name}")
    from shared.bus import full_definitions
    from shared.config import REPO_ROOT

    definitions = REPO_ROOT / "deploy" / "rabbitmq" / "definitions.json"
    definitions.write_text(json.dumps(full_definitions(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {definitions} (then `make k8s-definitions` for the Kubernetes copy)")
    from sanji.settings_reference import settings_markdown

    (docs / "settings.md").write_text(settings_markdown(), encoding="utf-8")
    print(f"wrote {docs / 'settings.md'}")


def cmd_settings(args) -> None:
    """Every variable, its type, default, readers and meaning, from the settings models (docs/settings.md)."""
    from sanji.settings_reference import settings_markdown

    sys.stdout.write(settings_markdown())


def cmd_dead_letters(args) -> None:
    from shared.dead_letters import list_dead_letters, replay_dead_letters

    settings = Settings.from_env()
    require_broker(settings)
    if args.action == "list":
        letters = list_dead_letters(settings.amqp_uri)
        for letter in letters:
            print(json.dumps(letter.as_row(), ensure_ascii=False))
        print(f"{len(letters)} dead-lettered message(s)", file=sys.stderr)
        return
    if not (args.all or args.event_id or args.queue):
        raise CommandFailed("say what to replay: --event-id ID (repeatable), --queue NAME, or --all")
    count = replay_dead_letters(settings.amqp_uri, event_ids=set(args.event_id) if args.event_id else None,
                                queue=args.queue)
    print(f"replayed {count} message(s)")


def cmd_prune(args) -> None:
    """One retention pass now, as each service's timer runs it (shared/retention.py): every table the service
    prunes, with the rows removed; a table whose retention is 0 is said to be kept."""
    from sqlalchemy.exc import SQLAlchemyError

    from shared.clock import SystemClock
    from shared.db import create_db_engine
    from shared.migrate import schema_current
    from shared.retention import RetentionPolicy, prune, targets_for

    for service in SERVICES if args.service is None else [args.service]:
        settings = Settings.from_env(service)
        require_valid_service_settings(service, settings)
        config = nameko_config(service, settings)
        targets = targets_for(_service_class(service), config)
        engine = create_db_engine(settings.database_url)
        try:
            if not schema_current(engine, service):
                raise CommandFailed(f"{service}: its database is not migrated (or not reachable): "
                                    f"run `sanji migrate {service}` first")
            policy = RetentionPolicy.from_config(config)
            removed = prune(engine, targets, now=SystemClock().now(), batch_size=policy.batch_size,
                            vacuum=policy.vacuum)
        except SQLAlchemyError as exc:
            raise CommandFailed(f"{service}: pruning failed ({type(exc).__name__}); nothing half-deleted: each "
                                "batch is its own transaction") from None
        finally:
            engine.dispose()
        for target in targets:
            outcome = "kept (retention 0)" if target.retention is None else f"{removed[target.name]} removed"
            print(f"{service}: {target.name}: {outcome}", flush=True)


def cmd_report(args) -> None:
    """办不成事 and escalation figures for a period, from the escalation service's database."""
    from services.escalation.reporting import ReportError, write_report

    settings = Settings.from_env("escalation")
    try:
        written = write_report(settings, date_from=args.date_from, date_to=args.date_to, out_dir=args.out)
    except ReportError as exc:
        raise CommandFailed(str(exc)) from None
    for path in written:
        print(f"wrote {path}")


def cmd_webhooks(args) -> None:
    """A fresh Standard Webhooks signing secret (``whsec_`` + base64 of 32 random bytes) for a department webhook."""
    from services.notification.settings import new_webhook_secret

    print(new_webhook_secret())


def cmd_keys(args) -> None:
    """Key chores: a fresh random key for a secret, or re-encrypting the applicants under the current key."""
    from shared.crypto import KeyConfigError, new_data_key_material

    if args.action == "generate":
        print(new_data_key_material())
        return
    from services.intake.key_rotation import rotate_sealed_rows
    from shared.crypto import DecryptionFailed, keyring_from_config

    settings = Settings.from_env("intake")
    try:
        keyring = keyring_from_config(nameko_config("intake", settings))
        result = rotate_sealed_rows(settings.database_url, keyring)
    except (KeyConfigError, DecryptionFailed) as exc:
        raise CommandFailed(f"keys rotate: {exc}") from None
    for table, count in result.rotated.items():
        print(f"{table}: re-encrypted {count} row(s) under key {keyring.current_key_id}")
    for table, per_key in result.remaining.items():
        for key_id, count in sorted(per_key.items()):
            print(f"{table}: {count} row(s) under key {key_id}")


def cmd_check_production(args) -> None:
    from shared.production import production_problems, profile_problems

    problems = []
    for service in [args.service] if args.service else SERVICES:
        settings = Settings.from_env(service)
        require_valid_service_settings(service, settings)
        problems += [f"{service}: {line}"
                     for line in profile_problems(settings) + production_problems(service, settings)]
    for line in dict.fromkeys(problems):
        print(line)
    if problems:
        raise CommandFailed(f"{len(dict.fromkeys(problems))} problem(s): the production profile would refuse to start")
    print("fit for production")


def _console_store(settings: Settings):
    from services.console.sessions import store_for

    return store_for(settings.database_url, str(settings.catalogue_dir),
                     config={"SANJI_PROFILE": settings.profile,
                             "SANJI_ASSERTION_KEY": settings.assertion_key or "", **settings.console})


def cmd_users(args) -> None:
    """Personal staff accounts of the console (the password is asked for, or read from SANJI_NEW_PASSWORD)."""
    import getpass

    from services.console.accounts import ROLES, AccountRefused

    settings = Settings.from_env("console")
    from shared.migrate import migrate

    migrate("console", migration_database_url(settings))
    store = _console_store(settings)
    if args.action == "list":
        for account in store.list_accounts():
            state = "disabled" if account.disabled else "active"
            print(f"{account.username}\t{account.display_name}\t{account.unit_code}\t{account.department or '-'}\t"
                  f"{account.roles}\t{state}{' (development)' if account.development else ''}")
        return
    if not args.username:
        raise CommandFailed(f"users {args.action} needs a USERNAME")
    if args.action in ("disable", "enable"):
        if not store.set_disabled(args.username, args.action == "disable", by="cli"):
            raise CommandFailed(f"no account {args.username!r}")
        print(f"{args.username}: {args.action}d")
        return
    if not (args.name and args.unit and args.roles):
        raise CommandFailed("users add needs --name, --unit and --roles (" + ", ".join(ROLES) + ")")
    password = None
    if not args.oidc_subject or args.password:
        from sanji.settings_reference import CommandVariables

        password = CommandVariables.from_env().new_password or getpass.getpass(f"password for {args.username}: ")
    try:
        store.add_account(username=args.username, display_name=args.name, unit_code=args.unit,
                          department=args.department, roles=args.roles, password=password,
                          oidc_subject=args.oidc_subject, by="cli")
    except AccountRefused as refused:
        raise CommandFailed(f"{refused.field}: {refused.message}") from None
    print(f"{args.username}: added")


def cmd_audit_export(args) -> None:
    from datetime import datetime, timedelta

    from shared.workdays import SHANGHAI

    settings = Settings.from_env("console")
    try:
        since = datetime.fromisoformat(args.date_from).replace(tzinfo=SHANGHAI) if args.date_from else None
        until = (datetime.fromisoformat(args.date_to).replace(tzinfo=SHANGHAI) + timedelta(days=1)
                 if args.date_to else None)
    except ValueError:
        raise CommandFailed("--from and --to are dates, YYYY-MM-DD") from None
    text = _console_store(settings).audit_csv(since, until)
    if args.out:
        with open(args.out, "w", encoding="utf-8-sig", newline="") as handle:
            handle.write(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanji", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run-all", help="run every service on its defaults").set_defaults(func=cmd_run_all)
    serve = commands.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICES)
    serve.set_defaults(func=cmd_serve)
    migrate = commands.add_parser("migrate", help="migrate a service's tables")
    migrate.add_argument("service", choices=(*SERVICES, "all"))
    migrate.set_defaults(func=cmd_migrate)
    wait = commands.add_parser("wait-for-deps", help="wait for the broker and the database")
    wait.add_argument("service", nargs="?", choices=SERVICES, default=None)
    wait.add_argument("--timeout", type=int, default=60)
    wait.set_defaults(func=cmd_wait_for_deps)
    commands.add_parser("declare-topology", help="declare exchanges and queues").set_defaults(
        func=cmd_declare_topology)
    bus_parser = commands.add_parser("bus", help="development bus users, or a city's broker definitions")
    bus_parser.add_argument("action", choices=["setup", "definitions"])
    bus_parser.add_argument("--tokens", help="tokens file whose department principals get bus users (definitions)")
    bus_parser.set_defaults(func=cmd_bus)
    check = commands.add_parser("check-catalogue", help="validate a catalogue directory")
    check.add_argument("directory", nargs="?")
    check.set_defaults(func=cmd_check_catalogue)
    dead = commands.add_parser("dead-letters", help="list dead-lettered messages, or replay them after a fix")
    dead.add_argument("action", choices=("list", "replay"))
    dead.add_argument("--event-id", action="append", help="replay only this event (repeatable)")
    dead.add_argument("--queue", help="replay only what died in this queue")
    dead.add_argument("--all", action="store_true", help="replay everything")
    dead.set_defaults(func=cmd_dead_letters)
    prune_parser = commands.add_parser("prune", help="one retention pass now: delete published outbox rows, "
                                                     "processed-message records and finished notifications "
                                                     "past their retention")
    prune_parser.add_argument("service", nargs="?", choices=SERVICES, help="one service (default: every one)")
    prune_parser.set_defaults(func=cmd_prune)
    commands.add_parser("settings", help="every setting as a Markdown table (docs/settings.md)").set_defaults(
        func=cmd_settings)
    docs = commands.add_parser("write-docs", help="regenerate docs/openapi/*.json, docs/asyncapi.json, "
                                                  "docs/event-types.json and "
                                                  "docs/settings.md")
    docs.add_argument("directory", nargs="?", default="docs")
    docs.set_defaults(func=cmd_write_docs)
    report = commands.add_parser("report", help="办不成事 and escalation figures for a period (CSV and HTML)")
    report.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD (Shanghai)")
    report.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD, included")
    report.add_argument("--out", required=True, help="directory for the CSV files and index.html")
    report.set_defaults(func=cmd_report)
    calendar = commands.add_parser("calendar", help="show a year's working-day calendar, or load the "
                                                     "State Council's holiday arrangement")
    calendar_actions = calendar.add_subparsers(dest="action", required=True)
    show = calendar_actions.add_parser("show", help="weekdays off and weekend days worked in a year")
    show.add_argument("year", type=int)
    show.set_defaults(func=cmd_calendar)
    load = calendar_actions.add_parser("load", help="validate FILE and install it as the override file")
    load.add_argument("file")
    load.add_argument("--target", help="where to install it (default: SANJI_CALENDAR_OVERRIDES)")
    load.set_defaults(func=cmd_calendar)
    keys = commands.add_parser("keys", help="generate a key, or re-encrypt applicants under the current key")
    keys.add_argument("action", choices=("rotate", "generate"))
    keys.set_defaults(func=cmd_keys)
    webhooks = commands.add_parser("webhooks", help="a new signing secret for a department webhook")
    webhooks.add_argument("action", choices=("new-secret",))
    webhooks.set_defaults(func=cmd_webhooks)
    production = commands.add_parser("check-production", help="what the production profile would refuse")
    production.add_argument("service", nargs="?", choices=SERVICES)
    production.set_defaults(func=cmd_check_production)
    users = commands.add_parser("users", help="personal staff accounts of the console")
    users.add_argument("action", choices=("add", "disable", "enable", "list"))
    users.add_argument("username", nargs="?")
    users.add_argument("--name", help="the person's name as pages and history show it")
    users.add_argument("--unit", help="12-digit division code of the unit from the catalogue")
    users.add_argument("--department", help="department code (department staff)")
    users.add_argument("--roles", help="comma-separated: window, department, specialist, supervisor, admin")
    users.add_argument("--oidc-subject", help="bind an OpenID Connect subject (sign-in without a password)")
    users.add_argument("--password", action="store_true", help="also set a password when binding OIDC")
    users.set_defaults(func=cmd_users)
    audit = commands.add_parser("audit-export", help="the console's audit trail as CSV")
    audit.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (Shanghai)")
    audit.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD, included")
    audit.add_argument("--out", help="file to write (default: standard output)")
    audit.set_defaults(func=cmd_audit_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigurationRefused as exc:
        for line in exc.lines:
            print(f"sanji: {line}", file=sys.stderr)
        return exc.exit_status
    except SettingsInvalid as exc:  # a variable whose value does not fit: one line each, naming it
        for line in exc.lines:
            print(f"sanji: {line}", file=sys.stderr)
        return ConfigurationRefused.exit_status
    except CommandFailed as exc:
        print(f"sanji: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
