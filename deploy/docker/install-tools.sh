#!/usr/bin/env bash
# Installs the container tools from Debian (podman, buildah, runc, catatonit, netavark,
# mmdebstrap), kubectl (kustomize), Node.js with npm (the CRD schema check of the
# Kubernetes manifests) and HAProxy (the load balancer of deploy/rollout), without starting
# anything. deploy/podman/containers.conf holds the settings these machines need; the
# Makefile exports CONTAINERS_CONF to use it.
set -euo pipefail
needed=()
for tool in podman:podman buildah:buildah runc:runc catatonit:catatonit \
    netavark:/usr/lib/podman/netavark aardvark-dns:/usr/lib/podman/aardvark-dns \
    iptables:iptables mmdebstrap:mmdebstrap uidmap:newuidmap slirp4netns:slirp4netns fuse-overlayfs:fuse-overlayfs \
    kubectl:kubectl nodejs:node npm:npm haproxy:haproxy; do
    package="${tool%%:*}" command="${tool#*:}"
    command -v "$command" >/dev/null 2>&1 || [ -x "$command" ] || needed+=("$package")
done
if [ "${#needed[@]}" -gt 0 ]; then
    echo "installing ${needed[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
fi
