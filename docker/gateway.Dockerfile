# The gateway image: FastAPI, asyncpg, redis, fsspec (+ s3fs). No torch, no model library:
# the project is installed without the `worker` extra (a test keeps gateway/ free of them).
#
#   docker build -f docker/gateway.Dockerfile -t scribe-gateway .
#
# The context is the repository less what .dockerignore leaves out; web/ (the page, a
# Next.js static export) is built in its own stage when the checkout has it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/scribe
WORKDIR /app
# Dependencies first, from what declares them alone (pyproject.toml, constraints.txt; a
# change in the sources reinstalls nothing), by scripts/install-deps.sh as
# scripts/install.sh runs it, here with the s3 extra only; then the project itself,
# editable into /app: migrations are read from /app/migrations at run time. The page's API
# types are generated from this gateway's own OpenAPI schema (as scripts/web.sh does).
COPY pyproject.toml constraints.txt ./
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh /opt/scribe/bin/python s3
COPY . .
RUN /opt/scribe/bin/pip install --no-deps -e ".[s3]" \
 && ! /opt/scribe/bin/python -c "import torch" 2>/dev/null \
 && if [ -f web/package.json ]; then /opt/scribe/bin/python -m gateway.openapi_json web/openapi.json; fi

FROM ${NODE_IMAGE} AS web
ENV NEXT_TELEMETRY_DISABLED=1
COPY --from=build /app/web /src/web
# `npm ci` from the lock file, then `next build` writes the static export to web/out.
RUN mkdir -p /web/out \
 && if [ -f /src/web/package.json ]; then \
      cd /src/web && npm ci --no-audit --no-fund && npm run build && cp -a out/. /web/out/; \
    fi

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home scribe
COPY --from=build /opt/scribe /opt/scribe
COPY --from=build /app /app
COPY --from=web /web/out /app/web/out
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
