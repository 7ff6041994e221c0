#!/usr/bin/env bash
# Installs from Debian's archive what the real one-node cluster (devkit/node) runs on:
# containerd (with its CRI plugin) and runc, the CNI plugins (bridge, host-local,
# loopback, portmap), iptables and conntrack for kube-proxy, util-linux's unshare and
# nsenter, iproute2 for the veth, openssl for the cluster's certificates; curl for the
# README's own commands, which the node tests run as copied.
# Idempotent: when every package is already installed it touches nothing (no
# `apt-get update` either), so repeated test runs cost nothing. Run by the project's
# scripts (devkit/node/node.ts calls it), never needed by hand.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables ipset conntrack util-linux iproute2 openssl curl)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "node packages: all installed (${packages[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "node packages missing (${missing[*]}); installing them needs root" >&2
  exit 1
fi
echo "node packages: installing ${missing[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: containerd and docker.io recommend each other's friends; the node needs none of them.
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian's containerd package enables a host-wide service; the node runs its own containerd in its own
# namespaces, and a host daemon would only hold /run/containerd. Stop it only if this script just installed it.
if [[ " ${missing[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
  systemctl disable --now containerd || true
fi
