"""The benchmark suite's code stays importable and its row builders keep the schema's rules.

No PostgreSQL load and no gunicorn: a handful of rows from the data generator's
builders, checked against the CHECK constraints they must pass; the keyset baseline
app on SQLite; the report rendered from made-up figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
import uuid

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench import cases, data, load, measure, report, run, server, settings  # noqa: F401
from bench.textbank import TextBank
from dashboard.models import Base, Generation, GenerationStatus, Organization
from dashboard.models.generations import REPETITION_PENALTY, TEMPERATURE, TOP_K, TOP_P

SMALL = settings.Spec(
    orgs=6,
    generations=400,
    big_generations=120,
    big_custom_voices=15,
    big_members=5,
    audio_samples=3,
    voice_audio_samples=2,
)
COLUMNS = {name: i for i, name in enumerate(data.GENERATION_COLUMNS)}


@pytest.fixture(scope="module")
def planned():
    bank = TextBank(SMALL.seed)
    now = int(time.time() * 1_000_000)
    accounts = data.plan_accounts(SMALL, bank, now, "bench-hash", "other-hash")
    plan = data.plan_generations(SMALL, len(accounts.orgs), now)
    system = [data.SystemVoice(str(uuid.uuid4()), f"System {i}") for i in range(20)]
    rows = list(data.generation_rows(plan, accounts, system, bank, SMALL.seed))
    return accounts, plan, rows


def test_generation_rows_obey_the_schema_checks(planned):
    _accounts, plan, rows = planned
    assert len(rows) == SMALL.generations
    for row in rows:
        value = {name: row[i] for name, i in COLUMNS.items()}
        text = value["text"]
        assert data.TEXT_MIN_CHARS <= len(text) <= data.TEXT_MAX_CHARS
        assert text == text.strip() and not any(c in text for c in "\t\n\r\\")
        assert value["character_count"] == len(text)
        assert TEMPERATURE[0] <= value["temperature"] <= TEMPERATURE[1]
        assert TOP_P[0] <= value["top_p"] <= TOP_P[1]
        assert TOP_K[0] <= value["top_k"] <= TOP_K[1] and isinstance(value["top_k"], int)
        assert REPETITION_PENALTY[0] <= value["repetition_penalty"] <= REPETITION_PENALTY[1]
        assert value["status"] in {s.value for s in GenerationStatus}
        if value["status"] == "succeeded":
            assert value["audio_key"] == f"generations/orgs/{value['org_id']}/{value['id']}"
            assert value["duration_ms"] > 0 and len(value["audio_sha256"]) == 64
        if value["status"] == "failed":
            assert value["error"]
        assert 1 <= len(value["voice_name"]) <= 100
    counts = {}
    for row in rows:
        counts[row[COLUMNS["org_id"]]] = counts.get(row[COLUMNS["org_id"]], 0) + 1
    assert max(counts.values()) == SMALL.big_generations


def test_ids_are_unique_uuid7_in_created_at_order(planned):
    _accounts, plan, rows = planned
    ids = [uuid.UUID(row[COLUMNS["id"]]) for row in rows]
    assert len(set(ids)) == len(ids) and {i.version for i in ids} == {7}
    keys = [(row[COLUMNS["created_at"]], uuid.UUID(row[COLUMNS["id"]])) for row in rows]
    assert keys == sorted(keys)
    for when, gen_id in keys[:20]:
        ms = int(dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1000)
        assert gen_id.int >> 80 == ms
    same_ms = data.ids_for(np.array([5_000, 5_400, 9_000]), np.array([1, 2, 3]))
    assert same_ms == [data.uuid7_str(5, 0, 1), data.uuid7_str(5, 1, 2), data.uuid7_str(9, 0, 3)]


def test_accounts_have_the_benchmark_member_and_unique_names(planned):
    accounts, _plan, _rows = planned
    big = accounts.orgs[0]
    assert big.slug == settings.BIG_SLUG and accounts.bench_user_id in big.members
    assert len(big.custom_voices) == SMALL.big_custom_voices
    assert len({name for _, name in big.custom_voices}) == SMALL.big_custom_voices
    emails = [row[1] for row in accounts.user_rows]
    assert settings.BENCH_EMAIL in emails and len(set(emails)) == len(emails)
    pairs = [(row[1], row[2]) for row in accounts.membership_rows]
    assert len(set(pairs)) == len(pairs)
    slugs = [row[1] for row in accounts.org_rows]
    assert len(set(slugs)) == len(slugs) and all(2 <= len(s) <= 63 for s in slugs)


def test_texts_are_deterministic_for_a_seed():
    one, two = TextBank(3), TextBank(3)
    rng_one, rng_two = random.Random(1), random.Random(1)
    assert [one.text(120, rng_one) for _ in range(5)] == [two.text(120, rng_two) for _ in range(5)]


def test_keyset_baseline_lists_fifty_rows_newest_first(tmp_path):
    from bench import baseline_keyset

    url = f"sqlite:///{tmp_path / 'keyset.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    org = Organization(slug="big", name="Big")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with Session(engine) as session:
        session.add(org)
        session.flush()
        session.add_all(
            Generation(
                org_id=org.id,
                text=f"text {i}",
                voice_name="Aaron",
                character_count=len(f"text {i}"),
                created_at=start + dt.timedelta(minutes=i),
            )
            for i in range(60)
        )
        session.commit()
    engine.dispose()
    client = baseline_keyset.create_app({"SQLALCHEMY_DATABASE_URI": url}).test_client()
    page = client.get("/o/big/")
    assert page.status_code == 200 and page.data.count(b"<tr>") == 50
    assert page.data.index(b"text 59") < page.data.index(b"text 10")
    older = page.data.split(b'href="?after=')[1].split(b'"')[0].decode()
    assert client.get(f"/o/big/?after={older}").data.count(b"<tr>") == 10
    assert client.get("/o/nobody/").status_code == 404


def test_every_case_is_measured_in_the_rounds():
    """A case missing from ROUND_ORDER would be reported as "not measured" forever."""
    fx = cases.Fixtures(uuid.uuid4(), 300_000, "cursor", uuid.uuid4(), None, 5999, "vxb_x")
    assert {c.key for c in cases.build_cases(fx)} == set(run.ROUND_ORDER)


def test_load_refuses_other_hosts_and_report_renders():
    with pytest.raises(ValueError, match="loopback"):
        load.run_load("http://192.0.2.1/", {}, seconds=1, max_requests=1)
    assert load.percentile([5.0, 1.0, 3.0], 50) == 3.0
    fx = cases.Fixtures(uuid.uuid4(), 300_000, "cursor", uuid.uuid4(), None, 5999, "vxb_x")
    results = {c.key: run.CaseResult(c) for c in cases.build_cases(fx)}
    for n, result in enumerate(results.values()):
        rps = 100.0 + n
        result.rounds = [[load.LoadResult(int(rps * 10), 10.0, 5.0, 9.0, 0, "wrk")]] * 2
        result.median_ms, result.statement_status = 4.0, 200
        result.statements = ["SELECT 1"] * 4
    results["analytics"].available, results["analytics"].note = False, "not available yet"
    args = argparse.Namespace(rounds=2, connections=4, seconds=10, max_requests=100, warmup=1)
    text = report.render(
        run.RunResults(dt.datetime.now(dt.UTC), args, "wrk", fx, results, postgres="PostgreSQL")
    )
    assert "| history, first page |" in text and "not available yet" in text
    assert "≤ 5 SQL statements on every page" in text
    assert "API GET /api/v1/generations ≥ 0.7×" in text
