# Stand-in for postgres:18: Debian's postgresql-18 package (from the suite given as BASE,
# the first Debian suite that packages 18), with an entry point that does what the
# official image's does for the variables compose.yaml sets: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB on first start, password logins over the network,
# data in /var/lib/postgresql/18/docker (PGDATA, as in the official 18 image).
ARG BASE=scribe-standin/debian:sid
FROM ${BASE}
ARG PG_MAJOR=18
# The package must not create its own cluster: the entry point makes one in PGDATA.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
ENV PG_MAJOR=${PG_MAJOR} \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH \
    PGDATA=/var/lib/postgresql/${PG_MAJOR}/docker
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# Fast shutdown on `docker stop` (SIGTERM would wait for every client to leave).
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
