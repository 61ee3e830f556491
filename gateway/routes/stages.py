"""The stages a job runs, as the deployment's graph declares them (core/graph.py): what the
page and clients show, never a copy of their own. Open without a key, like /healthz."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.http.deps import ServicesDep

router = APIRouter(prefix="/v1/stages", tags=["stages"])


class StageInfo(BaseModel):
    name: str
    label: str = Field(description="what a person reads, in English (labels['en'])")
    labels: dict[str, str] = Field(
        description='what a person reads, by language of the page: {"en": …, "fr": …}'
    )
    inputs: list[str]
    # The job's result waits for it; false: it runs after the job has succeeded.
    result: bool


@router.get("", response_model=list[StageInfo], summary="The stages of a job, in graph order")
async def list_stages(services: ServicesDep) -> list[StageInfo]:
    return [
        StageInfo(
            name=d.name,
            label=d.label,
            labels=dict(d.labels),
            inputs=list(d.inputs),
            result=d.result,
        )
        for d in services.graph
    ]
