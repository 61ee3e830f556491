"""How well identification does in use (`GET /v1/metrics/accuracy`), from the corrections
people make; how it is counted is in gateway/services/metrics.py."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.http.deps import PrincipalDep, ServicesDep
from gateway.services import metrics

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])


class ModelAccuracy(BaseModel):
    embedding_model: str | None
    renames: int  # speakers renamed (latest rename per speaker and job)
    confirmed: int  # identify had named the same person
    corrected_wrong_name: int  # identify had named someone else
    corrected_unnamed: int  # identify had left the speaker unnamed
    confirmation_rate: float | None  # confirmed / speakers identify had named


@router.get(
    "/accuracy",
    response_model=list[ModelAccuracy],
    summary="How often identification was confirmed or corrected, per embedding model",
)
async def accuracy(services: ServicesDep, principal: PrincipalDep) -> list[ModelAccuracy]:
    return [ModelAccuracy(**asdict(m)) for m in await metrics.accuracy(services, principal.owner)]
