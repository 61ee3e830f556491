# Stand-in for node:20-bookworm-slim: Debian trixie's Node.js 20 and npm.
ARG BASE=scribe-standin/debian:trixie
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
CMD ["node"]
