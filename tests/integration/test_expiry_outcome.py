"""The expiry job's outcome, row by row: with the premises state the app keeps (its stream
tails read ahead in one round trip on PostgreSQL, its writes in bulk) it appends exactly the
events one premises at a time would decide, changes exactly the due rows and queues exactly
the mails one event at a time would; racing staff decisions of the same requests, each
request ends with one outcome; and a batch that fails after its append leaves nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from booking import jobs as jobs_module
from booking import recording
from booking.domain.popups import ExpirePopups
from booking.jobs import SCHEDULER, Jobs
from booking.notifications import Notifier
from booking.outbox import outbox
from booking.service import PremisesRepository, premises_stream
from booking.tables import users
from booking.usecases import popups as popup_cases
from events.catalog import PopupApproved, PopupExpired, PopupRejected
from events.serialization import serializer
from events.sql import read_transaction, write_transaction
from events.store import events_table
from projections.availability import busy_table
from projections.popups import popups_table
from tests.conftest import Api
from tests.integration.test_jobs import ALWAYS_OPEN, POPUP_RULES, ask

PREMISES = ("room", "hall", "sauna")


def _rows(conn: Any, table: Any, *order: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(table).order_by(*order)).mappings()]


def test_expiry_writes_what_each_premises_decides_and_each_event_mails(api: Api) -> None:
    for premises_id in PREMISES:
        api.premises(premises_id, opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=4)).replace(minute=0, second=0, microsecond=0)
    asked = [ask(api, base + timedelta(hours=n), PREMISES[n % 3]) for n in range(15)]
    # One decided before the run, and the last three not due at the run's instant.
    rejected = api.post(
        f"/api/v1/popup-requests/{asked[4]['id']}/reject", {"reason": "Varattu"}, role="staff"
    )
    assert rejected.status_code == 200, rejected.get_json()
    now = datetime.fromisoformat(asked[11]["decision_deadline"])
    recorded_at = now + timedelta(minutes=3)
    # The app's own premises cache, caught up by the requests: what a running scheduler has.
    kept: PremisesRepository = api.app.extensions["tilavaraus"].premises
    vault = api.app.extensions["tilavaraus"].vault
    job = Jobs(api.engine, kept, vault, None, clock=lambda: recorded_at)

    with read_transaction(api.engine) as conn:
        decisions = {p: kept.decide(conn, p, ExpirePopups(p, now)) for p in PREMISES}
        heads = {p: version for p, (version, _) in decisions.items()}
        decided = {p: events for p, (_, events) in decisions.items()}
        popups_before = {r["id"]: r for r in _rows(conn, popups_table, popups_table.c.id)}
        holds_before = _rows(conn, busy_table, busy_table.c.ref_id, busy_table.c.space_id)
        events_before = conn.execute(select(events_table.c.position)).scalars().all()
        mails_before = len(conn.execute(select(outbox.c.id)).all())
    due = {e.request_id for events in decided.values() for e in events}
    assert due == {a["id"] for n, a in enumerate(asked) if n <= 11 and n != 4}

    assert job.expire_popups(now) == len(due)

    with read_transaction(api.engine) as conn:
        appended = [
            r
            for r in conn.execute(select(events_table).order_by(events_table.c.position))
            if r.position not in set(events_before)
        ]
        # Each stream got its own decision's events, in its order, at its next versions.
        for premises_id in PREMISES:
            stream = premises_stream(premises_id)
            mine = [r for r in appended if r.stream == stream]
            expected = [serializer.dump(e) for e in decided[premises_id]]
            assert [(r.type, r.schema_version, r.data) for r in mine] == expected
            assert [r.version for r in mine] == [
                heads[premises_id] + i for i in range(1, len(mine) + 1)
            ]
            assert all(
                isinstance(e, PopupExpired) and e.expired_at == now for e in decided[premises_id]
            )
        assert {r.recorded_at for r in appended} == {recorded_at}
        assert {tuple(sorted(r.metadata.items())) for r in appended} == {
            tuple(sorted(SCHEDULER.as_json().items()))
        }

        # The due rows expired at `now`, one version on; every other row as it was.
        for row in _rows(conn, popups_table, popups_table.c.id):
            before = popups_before[row["id"]]
            if row["id"] in due:
                changed = {"status": "expired", "updated_at": now, "version": before["version"] + 1}
                assert row == {**before, **changed}
            else:
                assert row == before
        holds = _rows(conn, busy_table, busy_table.c.ref_id, busy_table.c.space_id)
        assert holds == [h for h in holds_before if h["ref_id"] not in due]

        # One mail per expired request, each the mail its event alone makes.
        mails = conn.execute(select(outbox).order_by(outbox.c.id)).mappings().all()[mails_before:]
        notifier = Notifier(conn)
        expected_mails = []
        for r in appended:
            request = popups_before[r.data["request_id"]]
            mail = notifier.mail(
                "popup_expired",
                f"{r.stream}:{r.version}",
                request["requested_by"],
                request["premises_id"],
                request["title"],
                request["start"],
                request["end"],
            )
            expected_mails.append(
                (mail.dedupe_key, mail.recipient_id, mail.language, mail.subject, mail.body)
            )
        assert [
            (m["dedupe_key"], m["recipient_id"], m["language"], m["subject"], m["body"])
            for m in mails
        ] == expected_mails
        assert {(m["created_at"], m["next_attempt_at"], m["attempts"]) for m in mails} == {
            (recorded_at, recorded_at, 0)  # queued at the clock's time, as the events
        }

    # Nothing is due any more; a scheduler with a cold cache agrees.
    assert job.expire_popups(now) == 0
    assert Jobs(api.engine, PremisesRepository(), vault, None).expire_popups(now) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_expiry_racing_staff_decisions_leaves_one_outcome_per_request(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff approve and reject requests while the job expires them, one premises per
    transaction and pausing before each append (so that the two interleave): each request
    ends approved, rejected or expired — one event, its row and its hold agreeing — and a
    refused decision is a 409."""
    monkeypatch.setattr(jobs_module, "PREMISES_PER_TRANSACTION", 1)
    # The job pauses between deciding and appending, so that decisions commit in between
    # and its append meets their versions (the guard; the batch then decides again).
    real_record = popup_cases.record_many

    def slow_record(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.1)
        return real_record(*args, **kwargs)

    monkeypatch.setattr(popup_cases, "record_many", slow_record)
    rooms = [f"room-{n}" for n in range(8)]
    for premises_id in rooms:
        api.premises(premises_id, opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=4)).replace(minute=0, second=0, microsecond=0)
    asked = [ask(api, base + timedelta(hours=n), rooms[n % 8]) for n in range(24)]
    deadline = max(datetime.fromisoformat(a["decision_deadline"]) for a in asked)
    token = api.token("staff")
    kept = api.app.extensions["tilavaraus"].premises
    vault = api.app.extensions["tilavaraus"].vault
    start = threading.Barrier(3)
    answers: dict[str, int] = {}
    errors: list[BaseException] = []

    def decide(mine: list[dict[str, Any]], verb: str) -> None:
        client = api.app.test_client()
        try:
            start.wait()
            for a in mine:
                response = client.post(
                    f"/api/v1/popup-requests/{a['id']}/{verb}",
                    json={"reason": "Varattu"} if verb == "reject" else None,
                    headers={"Authorization": f"Bearer {token}"},
                )
                answers[a["id"]] = response.status_code
        except BaseException as error:  # surfaced below
            errors.append(error)

    def expire() -> None:
        try:
            start.wait()
            job = Jobs(api.engine, kept, vault, None)
            for _ in range(3):
                job.expire_popups(deadline)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [
        threading.Thread(target=decide, args=(asked[0::2], "approve")),
        threading.Thread(target=decide, args=(asked[1::2], "reject")),
        threading.Thread(target=expire),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(answers.values()) <= {200, 409}, answers

    outcomes = {"PopupApproved": "approved", "PopupRejected": "rejected", "PopupExpired": "expired"}
    with read_transaction(api.engine) as conn:
        events = conn.execute(
            select(events_table.c.type, events_table.c.data).where(
                events_table.c.type.in_(list(outcomes))
            )
        ).all()
        rows = {r.id: r for r in conn.execute(select(popups_table))}
        holds = {
            r.ref_id for r in conn.execute(select(busy_table).where(busy_table.c.kind == "hold"))
        }
    by_request: dict[str, list[str]] = {}
    for type_, data in events:
        by_request.setdefault(data["request_id"], []).append(type_)
    for a in asked:
        (only,) = by_request[a["id"]]  # exactly one outcome
        assert rows[a["id"]].status == outcomes[only]
        assert (answers[a["id"]] == 200) == (only != "PopupExpired")
    assert holds.isdisjoint(a["id"] for a in asked)


def test_a_run_that_fails_after_its_append_leaves_nothing_and_the_next_does_it_all(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction per batch: a failure after the events' INSERT (the projections and
    mails written before it) rolls the whole batch back, and the next run expires every
    request once, with the same kept premises state."""
    for premises_id in PREMISES:
        api.premises(premises_id, opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=4)).replace(minute=0, second=0, microsecond=0)
    asked = [ask(api, base + timedelta(hours=n), PREMISES[n % 3]) for n in range(9)]
    now = max(datetime.fromisoformat(a["decision_deadline"]) for a in asked)
    kept = api.app.extensions["tilavaraus"].premises
    job = Jobs(api.engine, kept, api.app.extensions["tilavaraus"].vault, None)

    def snapshot() -> tuple[Any, ...]:
        with read_transaction(api.engine) as conn:
            return (
                _rows(conn, events_table, events_table.c.position),
                _rows(conn, popups_table, popups_table.c.id),
                _rows(conn, busy_table, busy_table.c.ref_id, busy_table.c.space_id),
                _rows(conn, outbox, outbox.c.id),
            )

    before = snapshot()
    real_write_many = recording.write_many

    def crash_after_append(*args: Any, **kwargs: Any) -> Any:
        real_write_many(*args, **kwargs)
        raise RuntimeError("the process died after the append")

    monkeypatch.setattr(recording, "write_many", crash_after_append)
    with pytest.raises(RuntimeError):
        job.expire_popups(now)
    assert snapshot() == before

    monkeypatch.setattr(recording, "write_many", real_write_many)
    assert job.expire_popups(now) == 9
    events, popups, holds, mails = snapshot()
    assert len(events) == len(before[0]) + 9
    assert {p["status"] for p in popups} == {"expired"}
    assert holds == []
    assert len(mails) == len(before[3]) + 9


def test_the_mails_of_many_popup_decisions_are_each_ones_alone(api: Api) -> None:
    """`Notifier.popup_mails`, which writes many decisions' mails at once (an expiry run's),
    writes what `Notifier.mail` writes for each alone: expiries, an approval, a rejection
    with its reason, in the requester's language."""
    api.premises("room", opening_hours=ALWAYS_OPEN, rules=POPUP_RULES)
    base = (datetime.now(UTC) + timedelta(days=4)).replace(minute=0, second=0, microsecond=0)
    asked = [ask(api, base + timedelta(hours=n)) for n in range(4)]
    with write_transaction(api.engine) as conn:
        who = asked[0]["requested_by"]
        conn.execute(update(users).where(users.c.id == who).values(language="sv"))
    at = base - timedelta(days=1)
    ids = [a["id"] for a in asked]
    decisions = [
        PopupExpired("room", ids[0], at),
        PopupApproved("room", ids[1], "booking-1", "staff", at),
        PopupRejected("room", ids[2], "staff", "Varattu", at, cause="slot_taken"),
        PopupExpired("room", ids[3], at),
    ]
    kinds = ["popup_expired", "popup_approved", "popup_rejected", "popup_expired"]
    with read_transaction(api.engine) as conn:
        many = Notifier(conn).popup_mails([(e, f"key-{n}") for n, e in enumerate(decisions)])
        alone = []
        for n, (event, kind) in enumerate(zip(decisions, kinds, strict=True)):
            row = conn.execute(select(popups_table).where(popups_table.c.id == ids[n])).one()
            reason = (event.cause, event.reason) if isinstance(event, PopupRejected) else None
            alone.append(
                Notifier(conn).mail(
                    kind,
                    f"key-{n}",
                    row.requested_by,
                    row.premises_id,
                    row.title,
                    row.start,
                    row.end,
                    reason=reason,
                )
            )
    assert many == alone
    assert {m.language for m in many} == {"sv"}
