# Stand-in for python:3.11-slim-bookworm: Debian bookworm's own Python 3.11 with venv and
# pip, `python` on PATH as in the official image. Built only where no registry answers.
ARG BASE=scribe-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python-is-python3 \
 && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python3"]
