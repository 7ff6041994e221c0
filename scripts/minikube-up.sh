#!/usr/bin/env bash
# `npm run up`: the main job, from a fresh machine to a running stack on Minikube.
#
#   1. starts Minikube if needed, sized for the HPA's 5 replicas plus a surge pod
#      (4 CPUs, 6 GiB; see "Sizing" below), with Calico so the NetworkPolicy is
#      enforced, and metrics-server for the HPA; says so when a running profile
#      is smaller or its network ignores NetworkPolicy;
#   2. picks the Pulumi backend without touching your `pulumi login`: the one you
#      are logged in to, or else a backend inside this project (./.pulumi);
#   3. selects or creates the stack (PULUMI_STACK, default dev), points it at the
#      profile (MINIKUBE_PROFILE, default minikube), generates the two MongoDB
#      passwords once, and runs `pulumi up` with your extra arguments
#      (`npm run up -- --yes`).
# A second run changes nothing before `pulumi up`.
#
# Environment: MINIKUBE_PROFILE, PULUMI_STACK, MINIKUBE_CPUS, MINIKUBE_MEMORY (MB),
# MINIKUBE_DRIVER, MINIKUBE_CONTAINER_RUNTIME (both: minikube's choice when unset;
# the program builds with `minikube image build`, which works on every runtime),
# PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

say() { printf 'up: %s\n' "$*"; }
warn() { printf '\nup: WARNING: %s\n\n' "$*" >&2; }
die() { printf 'up: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"; }
need minikube "https://minikube.sigs.k8s.io/docs/start/"
need pulumi "https://www.pulumi.com/docs/install/"
need node "Node.js 20.19 or later"

profile="${MINIKUBE_PROFILE:-minikube}"
stack="${PULUMI_STACK:-dev}"
stack_file() { node scripts/lib/stack-file.js "$stack" "$@"; }

# --- A stale `eval $(minikube docker-env)` -----------------------------------------------
# docker-env exports DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH for one profile's node as
# it was then (after a restart the port changes on macOS, Windows and rootless Docker) and
# marks them with MINIKUBE_ACTIVE_DOCKERD. Nothing here needs them: the program asks minikube
# for the profile it is given, and minikube's own docker driver needs the HOST's Docker, not
# the node's. So a docker-env (or podman-env) leftover is dropped for every command of this
# run. A DOCKER_HOST without that mark is your own Docker (rootless, colima, a remote engine)
# that minikube's docker driver and the registry image mode need, so it is kept.
if [[ -n "${MINIKUBE_ACTIVE_DOCKERD:-}" || "${DOCKER_CERT_PATH:-}" == *"/.minikube/"* ]]; then
  say "ignoring DOCKER_HOST=${DOCKER_HOST:-} from an earlier \`eval \$(minikube -p ${MINIKUBE_ACTIVE_DOCKERD:-…} docker-env)\` (the program asks minikube -p $profile itself)"
  unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH MINIKUBE_ACTIVE_DOCKERD
fi
if [[ -n "${MINIKUBE_ACTIVE_PODMAN:-}" ]]; then
  unset CONTAINER_HOST CONTAINER_SSHKEY MINIKUBE_ACTIVE_PODMAN
fi

# --- Which Pulumi backend ----------------------------------------------------------------
# PULUMI_BACKEND_URL if you set it; else the backend `pulumi login` chose (`pulumi whoami`
# answers); else a file backend inside this project, passed as PULUMI_BACKEND_URL to this
# run's pulumi commands only, so your global login stays as it was. `pulumi whoami` runs with
# stdin and stdout off a terminal, so a not-logged-in CLI fails (exit 3, "PULUMI_ACCESS_TOKEN
# must be set for login during non-interactive CLI sessions") instead of opening a login prompt;
# any other failure (offline, say) stops here rather than starting a second, local stack.
local_backend=""
if [[ -n "${PULUMI_BACKEND_URL:-}" ]]; then
  backend="$PULUMI_BACKEND_URL"
  say "Pulumi backend: $backend (PULUMI_BACKEND_URL)"
elif whoami="$(pulumi whoami --verbose </dev/null 2>&1)"; then
  backend="$(sed -n 's/^Backend URL: *//p' <<<"$whoami")"
  say "Pulumi backend: ${backend:-unknown} (your \`pulumi login\`)"
elif grep -qiE 'not logged in|must be set for login|PULUMI_ACCESS_TOKEN' <<<"$whoami"; then
  local_backend="$root/.pulumi"
  backend="file://$local_backend"
  say "not logged in to a Pulumi backend: keeping this project's state in $local_backend (your \`pulumi login\` is unchanged)"
else
  die "\`pulumi whoami\` failed: $(head -n 3 <<<"$whoami")
    Fix the login (\`pulumi login\`), or keep the state in this project: PULUMI_BACKEND_URL=file://$root/.pulumi npm run up"
fi

# --- The passphrase, decided before anything changes ------------------------------------
# Pulumi Cloud keeps each stack's key itself; every other backend (file, s3, gs, azblob,
# postgres) encrypts secrets with a passphrase by default. The stack file tells which one an
# existing stack uses (`encryptionsalt` = passphrase). The CLI cannot prompt while a value is
# piped into it, so the passphrase is taken from the environment or asked here, once, and
# exported to this run's pulumi commands only.
# What the real CLI (3.248, file backend) needs the passphrase for: `stack init` ("could not
# create secrets manager for new stack"), `config set --secret`, `config get <secret>` and
# `up`; not for `stack select` or a plain `config set`. `pulumi config --json` lists a secret
# as {"secret": true} without it, but fails outright ("Stack 'dev' is missing configuration
# value 'mongoAppPassword'") while a declared key without a default is unset, i.e. on exactly
# the first run, so the stack file is read instead.
case "$(stack_file secrets-provider)" in
  passphrase) needs_passphrase=1 ;;
  "") if [[ "$backend" == https://* ]]; then needs_passphrase=""; else needs_passphrase=1; fi ;;
  *) needs_passphrase="" ;; # a KMS or Vault key the CLI reaches by itself
esac
asked_passphrase=""
passphrase_asked=""
new_stack=""
[[ "$(stack_file secrets-provider)" == passphrase ]] || new_stack=1
if [[ -n "$needs_passphrase" ]]; then
  if [[ -n "${PULUMI_CONFIG_PASSPHRASE+set}" ]]; then
    : # given (an empty one too: Pulumi accepts it)
  elif [[ -n "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
    [[ -r "$PULUMI_CONFIG_PASSPHRASE_FILE" ]] || die "PULUMI_CONFIG_PASSPHRASE_FILE=$PULUMI_CONFIG_PASSPHRASE_FILE cannot be read"
  elif (: </dev/tty) 2>/dev/null; then
    # Echo goes off before the prompt appears, so nothing typed early is shown, and comes back
    # however the script ends.
    tty_settings="$(stty -g </dev/tty)"
    trap 'stty "$tty_settings" </dev/tty 2>/dev/null' EXIT
    ask() { stty -echo </dev/tty; printf 'up: %s: ' "$1" >/dev/tty; IFS= read -r REPLY </dev/tty; printf '\n' >/dev/tty; stty "$tty_settings" </dev/tty; }
    if [[ -n "$new_stack" ]]; then
      ask "choose a passphrase for the secrets of stack $stack (Pulumi asks for it again whenever it decrypts them)"
      asked_passphrase="$REPLY"
      ask "the same passphrase again"
      [[ "$asked_passphrase" == "$REPLY" ]] || die "the two passphrases differ; nothing was changed"
    else
      ask "passphrase of stack $stack"
      asked_passphrase="$REPLY"
    fi
    REPLY=""
    passphrase_asked=1 # an empty passphrase is one too
  else
    die "stack $stack keeps its secrets under a passphrase (backend $backend), and there is no terminal to ask for it.
    Nothing was changed. Give it in the environment, e.g.:
      export PULUMI_CONFIG_PASSPHRASE_FILE=~/.config/koa-mongodb.passphrase   # a file holding only the passphrase
    or PULUMI_CONFIG_PASSPHRASE=…; or use a backend that keeps the key (pulumi login)."
  fi
fi

# Every pulumi command of this run: the passphrase asked above (exported in a subshell, so no
# other program and no command line sees it) and the project-local backend, if chosen.
pulumi_run() {
  (
    if [[ -n "$passphrase_asked" ]]; then export PULUMI_CONFIG_PASSPHRASE="$asked_passphrase"; fi
    if [[ -n "$local_backend" ]]; then export PULUMI_BACKEND_URL="$backend"; fi
    exec pulumi "$@"
  )
}

# --- Minikube, sized for the HPA promise -------------------------------------------------
# Sizing. CPU requests at the stack's peak, with the HPA at its maximum of 5 data-service pods
# and the rollout's one surge pod (maxSurge 1, maxUnavailable 0):
#   data service 6 x 200m = 1200m; MongoDB 200m;
#   control plane (kubeadm): kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler
#   100m, etcd 100m = 650m; CoreDNS 100m; calico-node 250m (minikube's calico.yaml;
#   calico-kube-controllers, kube-proxy and storage-provisioner request none);
#   metrics-server 100m (minikube's addon)                          => 2500m in all.
# minikube's node reserves nothing, so allocatable = CPUs: 2 CPUs (minikube's default) fit
# (2000 - 1300) / 200 = 3 data-service pods, 3 CPUs fit the peak with 500m to spare, and 4 CPUs
# also leave room for `npm run test:e2e`'s second stack (600m) beside this one.
# Memory: limits of 6 x 500Mi + 500Mi = 3.5 GiB for the pods at the peak, about 1.2 GiB for
# the control plane, Calico and the runtime, and the image build inside the node: 6 GiB.
SERVICE_CPU_M=200; PEAK_SERVICE_PODS=6; MONGO_CPU_M=200; SYSTEM_CPU_M=1100
NEED_CPU_M=$((SERVICE_CPU_M * PEAK_SERVICE_PODS + MONGO_CPU_M + SYSTEM_CPU_M))
service_pods_fitting() { echo $(( ($1 * 1000 - SYSTEM_CPU_M - MONGO_CPU_M) / SERVICE_CPU_M )); }

# MINIKUBE_MEMORY as minikube takes it: MB (6144, 6144mb) or GiB (6g, 6gb). (No ${v,,}: macOS has bash 3.2.)
to_mb() {
  case "$1" in
    *[gG][bB] | *[gG]) local n="${1%[gG]*}"; [[ "$n" =~ ^[0-9]+$ ]] && echo $((n * 1024)) && return ;;
    *[mM][bB] | *[mM]) local n="${1%[mM]*}"; [[ "$n" =~ ^[0-9]+$ ]] && echo "$n" && return ;;
    *) [[ "$1" =~ ^[0-9]+$ ]] && echo "$1" && return ;;
  esac
  die "MINIKUBE_MEMORY=$1: give MB (6144) or GiB (6g)"
}
want_cpus="${MINIKUBE_CPUS:-4}"
[[ "$want_cpus" =~ ^[0-9]+$ ]] || die "MINIKUBE_CPUS=$want_cpus: give a number of CPUs"
want_memory="$(to_mb "${MINIKUBE_MEMORY:-6144}")"
host_cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)"
host_memory=$(( $(getconf _PHYS_PAGES 2>/dev/null || echo 0) * $(getconf PAGE_SIZE 2>/dev/null || echo 0) / 1048576 ))
recreate="${local_backend:+PULUMI_BACKEND_URL=$backend }pulumi destroy --yes   # the stack first (if any), so its state does not outlive the cluster
      minikube delete -p $profile   # deletes the cluster and the data in it
      MINIKUBE_PROFILE=$profile npm run up"

# minikube's docker and podman drivers run the node as a container, and refuse more CPUs or memory
# than that engine has (cmd/minikube/cmd/start_flags.go: "… has only N MB memory but you specified
# M MB"; start.go likewise for CPUs). On a Mac or Windows the engine is a VM (Docker Desktop, colima,
# podman machine) that is often far smaller than the host, so its own size is what counts:
# `docker info` / `podman info` (what minikube reads, pkg/drivers/kic/oci/info.go).
engine_size() { # prints "<memory MB> <CPUs>" of the docker or podman engine, or nothing
  case "$1" in
    docker) docker info --format '{{.MemTotal}} {{.NCPU}}' 2>/dev/null ;;
    podman) podman info --format '{{.Host.MemTotal}} {{.Host.CPUs}}' 2>/dev/null ;;
  esac | awk 'NF == 2 && $1 > 0 { printf "%d %d\n", $1 / 1048576, $2 }'
}
# The driver a new profile gets: yours, minikube's configured default, else (as minikube picks on
# most laptops) docker when a Docker engine answers.
driver="${MINIKUBE_DRIVER:-$(minikube -p "$profile" config get driver 2>/dev/null || true)}"
if [[ -z "$driver" ]] && docker info >/dev/null 2>&1; then driver=docker; fi

# What a profile can be given: the host's CPUs and memory less 2 GiB for the host itself, or, for the
# docker and podman drivers, the engine's less 512 MB for the engine VM's own processes (minikube
# refuses more than the engine has). Within that, the size asked for (an explicit MINIKUBE_CPUS /
# MINIKUBE_MEMORY is passed as given: VM drivers may overcommit). Later runs compare the profile with
# this size, so a profile the script itself made smaller does not warn ever after.
avail_cpus="$host_cpus"; avail_memory="$host_memory"; headroom=2048; avail_what="this machine has"
if [[ "$driver" == docker || "$driver" == podman ]]; then
  read -r engine_memory engine_cpus <<<"$(engine_size "$driver")" || true
  if [[ -n "${engine_memory:-}" ]]; then
    avail_cpus="$engine_cpus"; avail_memory="$engine_memory"; headroom=512; avail_what="$driver's engine (docker info) has"
  fi
fi
cpus="$want_cpus"; memory="$want_memory"
if [[ -z "${MINIKUBE_CPUS:-}" ]] && (( avail_cpus > 0 && avail_cpus < cpus )); then cpus="$avail_cpus"; capped_cpus=1; fi
if [[ -z "${MINIKUBE_MEMORY:-}" ]] && (( avail_memory > 0 && avail_memory - headroom < memory )); then
  memory=$(( avail_memory - headroom > 2200 ? avail_memory - headroom : 2200 ))
  (( memory <= avail_memory )) || memory="$avail_memory"
  capped_memory=1
fi

profile_exists=""
if minikube profile list -o json --light 2>/dev/null | node scripts/lib/minikube-profile.js "$profile" >/dev/null 2>&1; then profile_exists=1; fi
if ! minikube -p "$profile" status >/dev/null 2>&1; then
  if [[ -n "$profile_exists" ]]; then
    # A stopped profile keeps its size and network: sizing flags would only be refused (docker
    # driver) or ignored, so it is started as it is.
    say "starting Minikube: minikube -p $profile start (an existing profile keeps its size)"
    minikube -p "$profile" start
  else
    [[ -z "${capped_cpus:-}" ]] || say "$avail_what $avail_cpus CPUs, so Minikube gets $cpus, which fit $(service_pods_fitting "$cpus") data-service pods at the stack's peak (MINIKUBE_CPUS=$want_cpus overcommits with a VM driver; the docker and podman drivers refuse it)"
    [[ -z "${capped_memory:-}" ]] || say "$avail_what $avail_memory MB of memory, so Minikube gets $memory MB"
    start=(start --cpus="$cpus" --memory="${memory}mb" --cni=calico)
    [[ -z "${MINIKUBE_DRIVER:-}" ]] || start+=(--driver="$MINIKUBE_DRIVER")
    [[ -z "${MINIKUBE_CONTAINER_RUNTIME:-}" ]] || start+=(--container-runtime="$MINIKUBE_CONTAINER_RUNTIME")
    say "starting Minikube: minikube -p $profile ${start[*]}"
    minikube -p "$profile" "${start[@]}"
  fi
fi

# minikube keeps a profile's CPUs, memory and CNI from its creation (a later start ignores new
# flags), so check what it has rather than what was asked.
facts="$(minikube profile list -o json --light 2>/dev/null | node scripts/lib/minikube-profile.js "$profile" || true)"
read -r have_cpus have_memory have_cni have_runtime _have_driver <<<"${facts:-- - - - -}"
if [[ "$have_cpus" =~ ^[0-9]+$ ]] && (( have_cpus < cpus )); then
  warn "Minikube profile $profile has $have_cpus CPUs; the stack requests $NEED_CPU_M""m at its peak (5 data-service pods + 1 surge pod x 200m, MongoDB 200m, control plane, CoreDNS, Calico and metrics-server 1100m), and $have_cpus CPUs fit $(service_pods_fitting "$have_cpus") data-service pods: the HPA stops there and a rollout at that size waits for a free slot.
    To give it $want_cpus CPUs and $want_memory MB:
      $recreate"
fi
if [[ "$have_memory" =~ ^[0-9]+$ ]] && (( have_memory < memory )); then
  warn "Minikube profile $profile has $have_memory MB of memory, less than the $memory MB it is started with here (the pods' limits alone reach 3.5 GiB at the peak). To recreate it:
      $recreate"
fi
if [[ -n "${MINIKUBE_CONTAINER_RUNTIME:-}" && "$have_runtime" != - && "$have_runtime" != "$MINIKUBE_CONTAINER_RUNTIME" ]]; then
  warn "Minikube profile $profile runs $have_runtime, not MINIKUBE_CONTAINER_RUNTIME=$MINIKUBE_CONTAINER_RUNTIME (minikube keeps a profile's runtime); carrying on with $have_runtime."
fi

# NetworkPolicy is only enforced by a CNI that implements it (Calico, Cilium); minikube's
# default bridge/kindnet networks accept the object and ignore it.
enforced=""
case "$have_cni" in calico | cilium) enforced=1 ;; esac
if [[ -z "$enforced" ]] && command -v kubectl >/dev/null 2>&1 &&
  [[ -n "$(kubectl --context "$profile" get pods -n kube-system -l 'k8s-app in (calico-node,cilium)' -o name 2>/dev/null)" ]]; then
  enforced=1
fi
if [[ -z "$enforced" && -z "$facts" ]] && ! command -v kubectl >/dev/null 2>&1; then
  say "could not read profile $profile's network (no \`minikube profile list -o json\`, no kubectl): the NetworkPolicy is enforced only with Calico or Cilium"
elif [[ -z "$enforced" ]]; then
  cni_name="$have_cni"; [[ "$cni_name" != - ]] || cni_name="minikube's default"
  warn "Minikube profile $profile runs the $cni_name network, which does not enforce NetworkPolicy: the policy letting only the data service reach MongoDB is created but IGNORED (every pod in the cluster can connect to MongoDB on 27017; it still needs a password). To enforce it, recreate the profile with Calico:
      $recreate"
fi

# metrics-server feeds the HPA; enabling it only when it is off keeps a second run a no-op.
if ! minikube -p "$profile" addons list -o json 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",(c)=>(s+=c)).on("end",()=>{try{process.exit(JSON.parse(s)["metrics-server"]?.Status==="enabled"?0:1)}catch{process.exit(1)}})'; then
  say "enabling metrics-server (the HPA's CPU metrics)"
  minikube -p "$profile" addons enable metrics-server >/dev/null
fi

# --- The stack ---------------------------------------------------------------------------
if [[ -n "$local_backend" ]]; then mkdir -p "$local_backend"; fi
if ! pulumi_run stack select "$stack" >/dev/null 2>&1; then
  say "creating stack $stack"
  pulumi_run stack init "$stack"
fi

# minikube names the kube context after the profile; the program needs both names. Plain
# values, compared with the stack file first, so an unchanged stack is not written.
for key in minikubeProfile kubeContext; do
  if [[ "$(stack_file value "$key")" != "$profile" ]]; then
    say "setting $key to $profile"
    pulumi_run config set "$key" "$profile"
  fi
done

# A password is generated only when the stack file holds none: whether it is set is read from
# the file (`secure:` entries), never by decrypting it, and a set password is never replaced
# (MongoDB keeps the one it was initialised with).
for key in mongoRootPassword mongoAppPassword; do
  if ! stack_file is-set "$key"; then
    say "generating $key (stored encrypted in $(stack_file path), never in git)"
    node -e "process.stdout.write(require('crypto').randomBytes(18).toString('base64url'))" | pulumi_run config set --secret "$key"
  fi
done

# A failed update says which resource failed; the pods say why: their events and last log lines.
pulumi_run up "$@" || {
  status=$?
  context="$(stack_file value kubeContext)"; namespace="$(stack_file value namespace)"
  echo >&2
  node_modules/.bin/tsx scripts/diagnose.ts --context "${context:-$profile}" --namespace "${namespace:-koa-mongodb}" >&2 || true
  exit "$status"
}

stack_yaml="$(stack_file path)"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- "$stack_yaml" 2>/dev/null; then
  echo "note: $stack_yaml now holds your stack's settings and encrypted secrets; keep it out of commits:"
  echo "      git update-index --skip-worktree $stack_yaml"
fi
echo
if [[ -n "$local_backend" ]]; then
  echo "The state is in $local_backend. For pulumi commands by hand, in this directory:"
  echo "      export PULUMI_BACKEND_URL=$backend"
fi
echo "try:  curl \"\$(pulumi stack output url)/data\""
