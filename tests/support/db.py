from __future__ import annotations

from sqlalchemy import create_engine, event, exc, func, select, table

from shared.db import create_db_engine, normalise_url, session_factory
from shared.outbox import UnitOfWork


def count_rows(database_url: str, *table_names: str) -> dict[str, int]:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return {name: connection.scalar(select(func.count()).select_from(table(name))) for name in table_names}
    finally:
        engine.dispose()


INTAKE_TABLES = ("intake_cases", "intake_applicants", "intake_case_items", "intake_deferred_materials",
                 "intake_idempotency_keys", "outbox_messages")


def outbox_bodies(database_url: str, event_type_suffix: str) -> list[dict]:
    """The CloudEvents a service recorded in its outbox for one type (``cn.sanji.<suffix>``), in order."""
    import json

    from sqlalchemy import text

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            bodies = connection.execute(
                select(text("body")).select_from(text("outbox_messages"))
                .where(text("event_type = :t")).order_by(text("seq")),
                {"t": f"cn.sanji.{event_type_suffix}"}).scalars().all()
    finally:
        engine.dispose()
    return [json.loads(body) for body in bodies]



class _LosesTheDatabaseAfterItsCommit(UnitOfWork):
    def __init__(self, database: DatabaseLostAfterCommit):
        super().__init__(database.factory, source=database.source, clock=database.clock)
        self._database = database

    def commit(self):
        super().commit()
        self._database.lost = True
        self.session.close()                 # its connection goes back to the pool ...
        self._database.engine.dispose()      # ... which is emptied: any later read needs a new connection, refused


class DatabaseLostAfterCommit:
    """A database that is gone the moment after a commit: ``factory`` gives sessions as usual, ``unit_of_work()`` one
    whose commit succeeds and then loses the database (the pool emptied, every new connection refused), so that
    anything read after the commit fails as it would if the server went away just then. ``restore()`` brings it
    back, to check what was committed."""

    def __init__(self, database_url: str, *, source: str, clock):
        self.engine = create_db_engine(normalise_url(database_url))
        self.factory = session_factory(self.engine)
        self.source, self.clock, self.lost = source, clock, False
        event.listen(self.engine, "do_connect", self._refuse_once_lost)

    def _refuse_once_lost(self, dialect, connection_record, cargs, cparams):
        if self.lost:
            raise exc.OperationalError("connect", {}, Exception("connection refused: the database is gone"))

    def unit_of_work(self) -> UnitOfWork:
        """Loses the database just after its commit."""
        return _LosesTheDatabaseAfterItsCommit(self)

    def plain_unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.factory, source=self.source, clock=self.clock)

    def restore(self) -> None:
        self.lost = False

    def close(self) -> None:
        self.engine.dispose()
