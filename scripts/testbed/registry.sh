#!/usr/bin/env bash
# A throwaway OCI registry (Debian's docker-registry, distribution v2) on 127.0.0.1 for tests.
#
#   registry.sh start DIR [--port N] [--htpasswd USER:PASS]
#   registry.sh stop DIR
#   registry.sh url DIR
#
# start: storage, config, log and pid file all live in DIR. Without --port the first free port
# from 5000 up is used (and the next one tried if another process grabs it first). Waits up to
# 10 s for /v2/ to answer (401 counts when auth is on). Writes for clients:
#   DIR/registries.conf  containers-registries.conf v2 marking the registry insecure (plain HTTP)
#   DIR/auth.json        dockerconfigjson with the credentials (only with --htpasswd, mode 0600)
#   DIR/policy.json      an accept-anything signature policy for skopeo/podman --policy
# Progress goes to stderr; the last line on stdout is the address, 127.0.0.1:PORT.
# stop: kills the registry started in DIR (TERM, then KILL after 5 s) and removes the pid file;
# the storage stays for the caller to delete with DIR. Stopping a stopped registry is not an error.
# url: prints the address of the registry running in DIR, fails if none is.
set -euo pipefail

prog=$(basename "$0")
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}
usage() {
  cat >&2 <<EOF
usage: $prog start DIR [--port N] [--htpasswd USER:PASS]
       $prog stop DIR
       $prog url DIR
EOF
  exit 2
}

# True while PID runs docker-registry. A zombie (exited, not yet reaped by whoever inherited it)
# has no exe link, so it counts as gone; a recycled pid running something else does not match.
alive() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null || true)
  [[ "$exe" == */docker-registry* ]]
}

# True while PID exists and is not a zombie, whatever it runs (right after the fork it is still
# bash/setsid, before exec).
running() {
  local stat state
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# Pid of the registry recorded in DIR if it is still running, else empty.
running_pid() {
  local dir=$1 pid
  [[ -f "$dir/registry.pid" ]] || return 0
  pid=$(<"$dir/registry.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if alive "$pid"; then printf '%s\n' "$pid"; fi
}

port_in_use() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# True when PID holds the listening TCP socket on 127.0.0.1:PORT. A /v2/ answer alone proves
# nothing: another registry started at the same moment may own the port while ours is still
# starting and about to fail with "address already in use".
owns_listener() {
  local pid=$1 port=$2 hexport inode fd
  hexport=$(printf '%04X' "$port")
  # /proc/net/tcp{,6}: field 2 is ADDR:PORT in hex, field 4 the state (0A = LISTEN), field 10
  # the socket inode.
  for inode in $(awk -v p=":$hexport" '$2 ~ (p "$") && $4 == "0A" {print $10}' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    for fd in /proc/"$pid"/fd/*; do
      [[ "$(readlink "$fd" 2>/dev/null)" == "socket:[$inode]" ]] && return 0
    done
  done
  return 1
}

http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$1/v2/" 2>/dev/null || true
}

write_config() {
  local dir=$1 port=$2 auth=$3
  {
    printf 'version: 0.1\n'
    printf 'log:\n  level: warn\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: "%s"\n' "$dir/data"
    printf '  delete:\n    enabled: true\n'
    printf '  maintenance:\n    uploadpurging:\n      enabled: false\n'
    printf 'http:\n  addr: "127.0.0.1:%s"\n  secret: "%s"\n' "$port" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    if [[ "$auth" == yes ]]; then
      printf 'auth:\n  htpasswd:\n    realm: lca-test\n    path: "%s"\n' "$dir/htpasswd"
    fi
  } >"$dir/config.yml"
}

cmd_start() {
  local dir="" port="" creds=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port)
        [[ $# -ge 2 ]] || usage
        port=$2
        shift 2
        ;;
      --htpasswd)
        [[ $# -ge 2 ]] || usage
        creds=$2
        shift 2
        ;;
      -*) usage ;;
      *)
        [[ -z "$dir" ]] || usage
        dir=$1
        shift
        ;;
    esac
  done
  [[ -n "$dir" ]] || usage
  if [[ -n "$port" && ! "$port" =~ ^[0-9]+$ ]]; then die "--port must be a number, got '$port'"; fi
  command -v docker-registry >/dev/null 2>&1 || die "docker-registry not found (apt-get install docker-registry)"
  command -v curl >/dev/null 2>&1 || die "curl not found"
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  if [[ -n "$(running_pid "$dir")" ]]; then
    die "a registry is already running from $dir (pid $(running_pid "$dir")); stop it first"
  fi
  rm -f "$dir/registry.pid" "$dir/address" "$dir/auth.json"

  local auth=no user pass
  if [[ -n "$creds" ]]; then
    [[ "$creds" == *:* ]] || die "--htpasswd wants USER:PASS, got '$creds'"
    user=${creds%%:*}
    pass=${creds#*:}
    [[ -n "$user" && -n "$pass" ]] || die "--htpasswd wants a non-empty USER and PASS"
    command -v htpasswd >/dev/null 2>&1 || die "htpasswd not found (apt-get install apache2-utils)"
    # The registry only accepts bcrypt entries.
    htpasswd -Bbn "$user" "$pass" >"$dir/htpasswd" || die "htpasswd -Bbn failed"
    auth=yes
  fi

  # REGISTRY_* variables override the config file: do not let the caller's leak in.
  local v
  for v in ${!REGISTRY_@}; do unset "$v"; done

  local fixed=no
  if [[ -n "$port" ]]; then fixed=yes; else port=5000; fi
  local deadline=$((SECONDS + 10)) pid="" code attempts=0
  while :; do
    if [[ "$fixed" == no ]]; then
      while port_in_use "$port"; do
        port=$((port + 1))
        [[ "$port" -le 65535 ]] || die "no free port from 5000 up"
      done
    elif port_in_use "$port"; then
      die "port $port on 127.0.0.1 is already in use"
    fi
    write_config "$dir" "$port" "$auth"
    say "starting docker-registry on 127.0.0.1:$port (storage $dir/data, auth $auth, log $dir/registry.log)"
    # setsid: its own session, so the caller's process-group kill (e.g. a runner's timeout) does
    # not take it down; stdio detached so a caller reading our output is not held open.
    setsid docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$dir/registry.pid"
    attempts=$((attempts + 1))
    while :; do
      if ! running "$pid"; then
        wait "$pid" 2>/dev/null || true
        break
      fi
      code=$(http_code "127.0.0.1:$port")
      # Something else could answer on that port if ours failed to bind: ours must hold it.
      if [[ "$code" == 200 || ("$auth" == yes && "$code" == 401) ]] && alive "$pid" &&
        owns_listener "$pid" "$port"; then
        break 2
      fi
      if [[ "$SECONDS" -ge "$deadline" ]]; then
        kill "$pid" 2>/dev/null || true
        rm -f "$dir/registry.pid"
        die "registry on 127.0.0.1:$port did not answer /v2/ within 10 s (last HTTP code '$code'); see $dir/registry.log"
      fi
      sleep 0.05
    done
    # The registry exited.
    rm -f "$dir/registry.pid"
    if [[ "$fixed" == no && "$attempts" -lt 20 ]] && tail -n 5 "$dir/registry.log" | grep -q 'address already in use'; then
      say "port $port was taken meanwhile, trying the next one"
      port=$((port + 1))
      continue
    fi
    die "docker-registry exited during start-up: $(tail -n 3 "$dir/registry.log" | tr '\n' ' ')"
  done

  local address="127.0.0.1:$port"
  printf '%s\n' "$address" >"$dir/address"
  cat >"$dir/registries.conf" <<EOF
# containers-registries.conf(5) v2: the test registry speaks plain HTTP.
[[registry]]
location = "$address"
insecure = true
EOF
  cat >"$dir/policy.json" <<'EOF'
{"default": [{"type": "insecureAcceptAnything"}]}
EOF
  if [[ "$auth" == yes ]]; then
    local b64
    b64=$(printf '%s:%s' "$user" "$pass" | base64 -w0)
    (
      umask 077
      printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$address" "$b64" >"$dir/auth.json"
    )
    chmod 0600 "$dir/auth.json"
    say "wrote $dir/auth.json for user $user"
  fi
  say "registry pid $pid ready at http://$address/v2/; wrote $dir/registries.conf"
  printf '%s\n' "$address"
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local dir=$1 pid
  [[ -d "$dir" ]] || die "no such directory: $dir"
  pid=$(running_pid "$dir")
  if [[ -z "$pid" ]]; then
    rm -f "$dir/registry.pid" "$dir/address"
    say "no registry running from $dir"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    running "$pid" || break
    sleep 0.05
  done
  if running "$pid"; then
    say "pid $pid ignored SIGTERM for 5 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      running "$pid" || break
      sleep 0.05
    done
  fi
  if [[ -n "$(running_pid "$dir")" ]]; then die "registry pid $pid is still running"; fi
  rm -f "$dir/registry.pid" "$dir/address"
  say "stopped registry pid $pid ($dir)"
}

cmd_url() {
  [[ $# -eq 1 ]] || usage
  local dir=$1
  [[ -n "$(running_pid "$dir")" ]] || die "no registry running from $dir"
  [[ -f "$dir/address" ]] || die "$dir/address missing"
  cat "$dir/address"
}

[[ $# -ge 1 ]] || usage
sub=$1
shift
case "$sub" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  url) cmd_url "$@" ;;
  -h | --help) usage ;;
  *) usage ;;
esac
