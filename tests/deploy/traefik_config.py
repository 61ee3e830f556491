"""Traefik configuration for tests, made from the project's own files.

Production Traefik reads its routes from the gateway container's `traefik.*` labels (docker
provider). Without Docker, the same labels become a file provider's dynamic configuration:
a label's name is a path in the configuration (`traefik.http.routers.scribe.rule` is
`http: {routers: {scribe: {rule: ...}}}`), and Traefik's decoder reads label values (a
comma list, "32", "-1") from YAML the way it reads them from labels, keys in any case.
The one thing the docker provider adds itself is where a service's server is: it takes the
container's address and the `server.port` label; here that becomes a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# Routing labels; the others (`traefik.enable`, `traefik.docker.*`) are docker-provider
# options with no place in a dynamic configuration.
CONFIG_ROOTS = frozenset({"http", "tcp", "udp", "tls"})


def service_labels(compose_file: Path, service: str) -> dict[str, str]:
    """The `traefik.*` labels of one service of a compose file, as a flat mapping."""
    compose = yaml.safe_load(compose_file.read_text())
    labels = compose["services"][service].get("labels", {})
    if isinstance(labels, list):  # the `- key=value` form
        labels = dict(item.split("=", 1) for item in labels)
    return {str(k): str(v) for k, v in labels.items() if str(k).startswith("traefik.")}


def dynamic_config(labels: Mapping[str, str], upstreams: Mapping[str, str]) -> dict[str, Any]:
    """The file provider's equivalent of `labels`. `upstreams` gives the URL that stands for
    each `server.port` the labels name (the docker provider would use the container's
    address); a port it does not name is a KeyError. Other `server.*` labels stay on the
    server: one the file provider has no place for is an error in Traefik's log."""
    tree: dict[str, Any] = {}
    for name, value in labels.items():
        _, *path = name.split(".")
        if not path or path[0] not in CONFIG_ROOTS:
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    for service in tree.get("http", {}).get("services", {}).values():
        balancer = service.get("loadbalancer", {})
        server = balancer.pop("server", None)
        if server is not None:
            balancer["servers"] = [{"url": upstreams[server.pop("port")], **server}]
    return tree
