#!/usr/bin/env bash
# Installs Debian's Prometheus (prometheus, promtool), Alertmanager (prometheus-alertmanager,
# amtool) and Pushgateway (prometheus-pushgateway) when they are missing. Installed, never
# started: the tests start their own throwaway servers. Needs root (apt-get); does nothing
# when all are present.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing ${missing[*]} (Debian packages)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
