"""Readiness proves storage works, within a deadline; a hung endpoint can't take the app.

Storage that hangs is the worst case: the connection is accepted and no byte comes back.
`tests.hanging.HangingServer` is such an endpoint, on loopback; these tests prove every
storage call gives up on its own, retries a bounded number of times, stops asking while
the endpoint is down (breaker), never holds more than a few threads (bulkhead), and that
`/readyz` answers within its own short deadline.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dashboard.storage import (
    CallGuard,
    S3Storage,
    StorageUnavailable,
    get_storage,
    system_voice_key,
)
from tests import factories
from tests.databases import make_config
from tests.hanging import HangingServer, hanging_server
from tests.s3server import use_s3


def hung_storage(server: HangingServer, **kwargs) -> S3Storage:
    return S3Storage(
        bucket="voices",
        endpoint_url=server.url,
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
        addressing_style="path",
        **{"connect_timeout": 1, "read_timeout": 0.3, "max_attempts": 1, **kwargs},
    )


# --------------------------------------------------------------------- readiness


def test_readyz_writes_reads_and_deletes_a_probe_object_and_leaves_none(app, client):
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        assert list(get_storage().list_keys("")) == []


def test_readyz_fails_when_a_prefix_cant_be_written(app, client):
    # The black-box run's case: voices/ replaced by a plain file; uploads fail, so must
    # readiness (it used to answer 200 because the root itself was fine).
    root = Path(app.config["STORAGE_LOCAL_ROOT"])
    root.mkdir(parents=True)
    (root / "voices").write_bytes(b"not a folder")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] != "ok"


def test_readyz_fails_when_generations_cant_be_written(app, client):
    root = Path(app.config["STORAGE_LOCAL_ROOT"])
    root.mkdir(parents=True)
    (root / "generations").write_bytes(b"")
    assert client.get("/readyz").status_code == 503


def test_readyz_on_s3_probes_and_cleans_up(app, client, s3_endpoint):
    import boto3

    bucket = "ready-probe"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    ).create_bucket(Bucket=bucket)
    use_s3(app, s3_endpoint)
    app.config["S3_BUCKET"] = bucket
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        assert list(get_storage().list_keys("")) == []


def test_readyz_answers_within_its_deadline_when_storage_hangs(app, client):
    with hanging_server() as server:
        use_s3(app, server.url, STORAGE_READY_TIMEOUT=0.3)
        response = client.get("/readyz")
        assert response.status_code == 503
        storage = response.get_json()["checks"]["storage"]
        assert "did not answer within 0.3 s" in storage or "timed out" in storage.lower()
        assert server.wait_for(1)


def test_readyz_verdict_is_shared_and_cached(app, client):
    with hanging_server() as server:
        use_s3(app, server.url, STORAGE_READY_TIMEOUT=0.3)
        assert client.get("/readyz").status_code == 503
        assert server.wait_for(1)
        seen = server.connections
        for _ in range(5):  # a load balancer polling: answered from the cached verdict
            assert client.get("/readyz").status_code == 503
        assert server.connections == seen


def test_health_endpoints_answer_over_http_with_force_https(tmp_path):
    from dashboard import create_app
    from dashboard.extensions import db

    app = create_app(make_config(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, FORCE_HTTPS=True))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    login = client.get("/login")  # everything else still goes to HTTPS
    assert login.status_code in (301, 302) and login.location.startswith("https://")


# ----------------------------------------------------------- bounded storage calls


def test_a_hung_call_gives_up_after_its_retry_budget():
    with hanging_server() as server:
        storage = hung_storage(server, max_attempts=2, guard=CallGuard(threshold=10))
        with pytest.raises(StorageUnavailable):
            storage.stat("voices/system/x.wav")
        assert server.connections == 2  # the first try and one retry, no more


def test_the_breaker_stops_asking_a_hung_endpoint():
    now = [1000.0]
    guard = CallGuard(threshold=3, cooldown=15, clock=lambda: now[0])
    with hanging_server() as server:
        storage = hung_storage(server, guard=guard)
        for _ in range(3):
            with pytest.raises(StorageUnavailable):
                storage.stat("voices/system/x.wav")
        assert server.connections == 3 and guard.is_open
        with pytest.raises(StorageUnavailable, match="stopped answering"):
            storage.stat("voices/system/x.wav")
        assert server.connections == 3  # refused without a connection
        now[0] += 16  # cooldown over: one trial call goes to the endpoint
        with pytest.raises(StorageUnavailable):
            storage.stat("voices/system/x.wav")
        assert server.connections == 4 and guard.is_open


def test_the_breaker_closes_when_the_endpoint_answers_again(s3_endpoint):
    now = [0.0]
    guard = CallGuard(threshold=1, cooldown=5, clock=lambda: now[0])
    with hanging_server() as server:
        storage = hung_storage(server, guard=guard)
        with pytest.raises(StorageUnavailable):
            storage.stat("voices/system/x.wav")
    assert guard.is_open
    healthy = S3Storage(
        bucket="breaker-closes",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
        guard=guard,
    )
    now[0] += 6
    with pytest.raises(StorageUnavailable):  # no bucket: the endpoint answered, though
        healthy.check()
    assert not guard.is_open


def test_the_bulkhead_fails_extra_calls_fast_while_others_hang():
    guard = CallGuard(max_concurrent=2, threshold=10, queue_seconds=0.2)
    with hanging_server() as server:
        storage = hung_storage(server, read_timeout=5, guard=guard)
        errors: list[Exception] = []

        def hang() -> None:
            try:
                storage.stat("voices/system/x.wav")
            except StorageUnavailable as exc:
                errors.append(exc)

        threads = [threading.Thread(target=hang) for _ in range(2)]
        for thread in threads:
            thread.start()
        assert server.wait_for(2)
        with pytest.raises(StorageUnavailable, match="too many requests are already waiting"):
            storage.stat("voices/system/y.wav")
        assert server.connections == 2
        server.close()  # the hung calls end now
        for thread in threads:
            thread.join(10)
        assert len(errors) == 2


def test_a_preview_against_a_hung_endpoint_is_a_502_and_other_pages_answer(app, client):
    from dashboard.extensions import db

    with app.app_context():
        voice = factories.make_voice(
            name="Abigail", audio_key=system_voice_key_for_test(), audio_size=10
        )
        db.session.commit()
        voice_id = voice.id
    with hanging_server() as server:
        use_s3(
            app,
            server.url,
            STORAGE_READ_TIMEOUT=1,
            STORAGE_MAX_ATTEMPTS=1,
            STORAGE_MAX_CONCURRENT_CALLS=2,
        )
        statuses: list[int] = []

        def preview() -> None:
            statuses.append(app.test_client().get(f"/voices/{voice_id}/audio").status_code)

        threads = [threading.Thread(target=preview) for _ in range(4)]
        for thread in threads:
            thread.start()
        assert server.wait_for(2)
        # Two previews hang on the endpoint; pages that don't need storage still answer.
        assert client.get("/healthz").status_code == 200
        assert client.get("/login").status_code == 200
        for thread in threads:
            thread.join(30)
        assert statuses == [502] * 4
        assert server.connections == 2  # the bulkhead kept two of four off the endpoint


def system_voice_key_for_test() -> str:
    import uuid

    return system_voice_key(uuid.uuid4())


def test_probe_copies_skip_the_guard_and_retry_once():
    storage = S3Storage(bucket="b", endpoint_url="http://127.0.0.1:9", read_timeout=30)
    probe = storage.for_probe(0.5)
    assert probe.guard is None and storage.guard is not None
    assert probe._read_timeout == 0.5 and probe._max_attempts == 1  # noqa: SLF001
