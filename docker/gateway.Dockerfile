# syntax=docker/dockerfile:1
# The gateway image: FastAPI, asyncpg, redis, fsspec (+ s3fs). No torch, no model library:
# the project is installed without the `worker` extra (a test keeps gateway/ free of them).
#
#   docker build -f docker/gateway.Dockerfile -t scribe-gateway .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/scribe
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY storage storage
COPY events events
COPY stages stages
COPY gateway gateway
COPY cli cli
COPY migrations migrations
# Editable into /app: migrations are read from /app/migrations at run time.
RUN /opt/scribe/bin/pip install -e ".[s3]" \
 && ! /opt/scribe/bin/python -c "import torch" 2>/dev/null

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home scribe
COPY --from=build /opt/scribe /opt/scribe
COPY --from=build /app /app
ENV PATH=/opt/scribe/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    SCRIBE_DATA_DIR=/data \
    FORWARDED_ALLOW_IPS=*
WORKDIR /app
USER scribe
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["scribe", "gateway", "--host", "0.0.0.0", "--port", "8000"]
