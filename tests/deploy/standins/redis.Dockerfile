# Stand-in for redis:7-alpine: Debian bookworm's redis-server 7.0, run from /data like the
# official image (so `--appendonly yes` writes its files to the volume).
ARG BASE=scribe-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
