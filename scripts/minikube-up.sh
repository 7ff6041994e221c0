#!/usr/bin/env bash
# `npm run up`: the main job, from a fresh machine to a running stack on Minikube.
# Starts Minikube if needed (with metrics-server for the HPA), selects or creates
# the `dev` stack, generates the two MongoDB passwords as Pulumi secrets if they
# are not set yet, and runs `pulumi up` (extra arguments are passed through,
# e.g. `npm run up -- --yes`).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "up: '$1' is not installed: $2" >&2; exit 1; }; }
need minikube "https://minikube.sigs.k8s.io/docs/start/"
need pulumi "https://www.pulumi.com/docs/install/"
need node "Node.js 20.19 or later"

profile="${MINIKUBE_PROFILE:-minikube}"
if ! minikube -p "$profile" status >/dev/null 2>&1; then
  echo "up: starting minikube (profile $profile, calico CNI so the NetworkPolicy is enforced)…"
  minikube -p "$profile" start --container-runtime=docker --cni=calico
fi
minikube -p "$profile" addons enable metrics-server >/dev/null

if ! pulumi whoami >/dev/null 2>&1; then
  echo "up: not logged in to a Pulumi backend; keeping state on this machine (pulumi login --local)"
  pulumi login --local
fi
stack="${PULUMI_STACK:-dev}"
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"

for key in mongoRootPassword mongoAppPassword; do
  if ! pulumi config get "$key" >/dev/null 2>&1; then
    echo "up: generating $key (stored encrypted in Pulumi.$stack.yaml's secrets provider, never in git)"
    node -e "process.stdout.write(require('crypto').randomBytes(18).toString('base64url'))" | pulumi config set --secret "$key"
  fi
done

pulumi up "$@"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- "Pulumi.$stack.yaml" 2>/dev/null; then
  echo "note: Pulumi.$stack.yaml now holds your encrypted secrets; keep it out of commits:"
  echo "      git update-index --skip-worktree Pulumi.$stack.yaml"
fi
echo
echo "try:  curl \"\$(pulumi stack output url)/data\""
