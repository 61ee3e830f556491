# Stand-in for redis:7-alpine: Debian bookworm's redis-server 7.0, run from /data like the
# official image (so `--appendonly yes` writes its files to the volume). As the official
# entry point does, a server started without a config file leaves protected mode (which
# refuses every connection from outside the container when no password is set).
ARG BASE=scribe-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && printf '%s\n' '#!/bin/sh' \
      'if [ "${1:-}" = redis-server ] && [ "${2#-}" != "${2:-}" -o $# -eq 1 ]; then set -- "$@" --protected-mode no; fi' \
      'exec "$@"' > /usr/local/bin/docker-entrypoint.sh \
 && chmod +x /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
