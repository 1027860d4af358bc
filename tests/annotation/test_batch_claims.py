"""The claims of the batch job list (mistral_magic/annotation/batchclaims.py, batchstore.py) against the
fake server: one transaction per claim, and a claim settled as its run left it."""

from __future__ import annotations

import json

import pytest

from mistral_magic.annotation.batchclaims import RUN_KEY, JobClaims
from mistral_magic.annotation.batchstore import RUNNING, BatchJobStore
from mistral_magic.api.batchjobs import BatchJobs
from mistral_magic.api.client import ChatClient
from mistral_magic.api.protocol import Endpoint
from mistral_magic.secret import Secret


@pytest.fixture
def parts(fake, tmp_path):
    client = ChatClient()
    base_url = fake.url + "/v1"
    store = BatchJobStore(tmp_path / "replies.sqlite3")
    jobs = BatchJobs(client, Endpoint(base_url=base_url, api_key=Secret("")))
    yield JobClaims(jobs, store, base_url=base_url, model="m", timeout_hours=24, grace=0), store, base_url
    store.close()
    client.close()


def job_on_server(fake, run: str) -> str:
    """A job carrying the metadata of claim ``run``, as the server made it."""
    body = {
        "requests": [{"custom_id": "k1", "body": {"messages": [{"role": "user", "content": "x"}]}}],
        "endpoint": "/v1/chat/completions",
        "model": "m",
        "metadata": {RUN_KEY: run},
    }
    return fake.batch.create(json.dumps(body).encode()).payload["id"]


def test_a_claim_covers_its_keys_once(parts):
    _, store, base_url = parts
    assert store.claim("r1", ["k1", "k2"], base_url, "m")
    assert not store.claim("r2", ["k2", "k3"], base_url, "m")  # k2 is taken: nothing of r2 is written
    claims, runs = store.covering(["k1", "k2", "k3"])
    assert list(claims) == ["r1"] and runs == {"k1": "r1", "k2": "r1"}
    store.ended("r1", "SUCCESS")
    assert store.claim("r2", ["k2", "k3"], base_url, "m")  # an ended job covers nothing


def test_a_claim_is_waited_for_while_its_run_submits_then_found_on_the_server(parts, fake):
    claims, store, base_url = parts
    with store.hold("r1"):
        assert store.claim("r1", ["k1"], base_url, "m")
        assert claims.covering(["k1"]).settling == {"k1"}  # its run holds the lock: waited for
        store.creating("r1")
        job_id = job_on_server(fake, "r1")
        store.unknown("r1")  # the answer to its creation was lost; the run lets go of its lock
    covered = claims.covering(["k1"])
    assert covered.keys == {"k1"} and covered.settling == set()
    assert [(c.run, c.job_id, c.state) for c in covered.claims.values()] == [("r1", job_id, RUNNING)]


def test_settling_a_stale_read_claim_does_not_release_a_claim_whose_creation_went_out(parts, fake):
    """A run reads another's claim while it uploads; that run then sends the creation, loses its
    answer and lets go of its lock. The claim is settled from what the job list holds now (its
    creation went out): looked up on the server, not released as one whose creation never went out."""
    claims, store, base_url = parts
    with store.hold("r1"):
        assert store.claim("r1", ["k1"], base_url, "m")
        [seen] = store.covering(["k1"])[0].values()  # read before the creation went out
        store.creating("r1")
        job_id = job_on_server(fake, "r1")
        store.unknown("r1")
    assert claims._settle(seen) is True
    record = store.get("r1")
    assert record is not None and record.job_id == job_id
