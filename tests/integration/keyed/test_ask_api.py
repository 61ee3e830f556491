"""POST /v1/ask with API keys on, on jobs built in the stores (as keyed/test_search_api.py
builds them: real e5-small passages indexed into Qdrant's local mode) and the gateway's
embedded language model (llama.cpp with SmolLM2, tests/conftest.py): an answer cites only
the asking tenant's moments; a tenant with no meetings is declined without a model call;
another tenant's job is a 404; a model server that is down is a 503 saying so."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.settings import LLMSettings
from gateway.services import Services
from llm.load import LazyLanguageModel
from search.embedder import E5SmallEmbedder
from tests.integration.keyed.test_search_api import meeting_of
from tests.llm_server import free_port
from tests.tenants import Tenant, new_tenant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def e5() -> E5SmallEmbedder:
    return E5SmallEmbedder()


@pytest.fixture(scope="module")
def own_language(services: Services) -> Iterator[None]:
    yield
    services.language.close()


async def test_an_answer_cites_only_the_askers_moments(
    client: httpx.AsyncClient, services: Services, e5: E5SmallEmbedder, own_language: None
) -> None:
    alice, bob = await new_tenant(services.auth), await new_tenant(services.auth)
    mine = await meeting_of(
        services, e5, alice, ["Ada will send the budget report on Monday.", "Good, thanks."]
    )
    theirs = await meeting_of(
        services, e5, bob, ["Ada will never send the budget report.", "Fine."]
    )
    resp = await client.post(
        "/v1/ask", json={"question": "Who sends the budget report?"}, headers=alice.headers
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["language"] == "en" and body["question"] == "Who sends the budget report?"
    assert {c["job_id"] for c in body["citations"]} <= {mine}
    assert theirs not in resp.text
    if body["declined"]:
        assert body["citations"] == [] and body["sentences"] == []
    else:
        for sentence in body["sentences"]:
            assert sentence["citations"]
            assert all(0 <= i < len(body["citations"]) for i in sentence["citations"])
        assert all(c["segment"] in (0, 1) for c in body["citations"])
    # Bob's job, named by Alice: not found, as if it did not exist.
    other = await client.post(
        "/v1/ask", json={"question": "budget?", "job_id": theirs}, headers=alice.headers
    )
    assert other.status_code == 404, other.text


async def test_a_tenant_without_meetings_is_declined_without_the_model(
    client: httpx.AsyncClient, services: Services
) -> None:
    carol: Tenant = await new_tenant(services.auth)
    resp = await client.post(
        "/v1/ask", json={"question": "Qui envoie le rapport ?"}, headers=carol.headers
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["declined"] and body["citations"] == [] and body["language"] == "fr"
    assert "ne le disent pas" in body["answer"] and body["model"] is None


async def test_a_model_server_that_is_down_is_a_503_with_the_reason(
    client: httpx.AsyncClient, services: Services, e5: E5SmallEmbedder
) -> None:
    dave = await new_tenant(services.auth)
    await meeting_of(services, e5, dave, ["The launch moves to June.", "Noted."])
    url = f"http://127.0.0.1:{free_port()}/v1"
    dead = services.settings.model_copy(
        update={"llm": LLMSettings(engine="openai", url=url, model="any")}
    )
    kept = services.language
    services.language = LazyLanguageModel(dead)
    try:
        for stream in (False, True):
            resp = await client.post(
                "/v1/ask",
                json={"question": "When is the launch?", "stream": stream},
                headers=dave.headers,
            )
            assert resp.status_code == 503, resp.text
            error = resp.json()["error"]
            assert error["code"] == "language_model_unavailable"
            assert url in error["message"] and "cannot be reached" in error["message"]
    finally:
        services.language = kept
