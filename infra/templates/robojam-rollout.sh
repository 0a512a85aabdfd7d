#!/usr/bin/env bash
# robojam-rollout: replace the running RoboJam container with IMAGE without dropping the address or traffic.
#
# Blue/green on one host: two slots, each a container published on HOST:PORT (PORTS lists the two). The proxy in
# front (Caddy, infra/templates/Caddyfile.j2) lists both ports and retries a refused connection on the other, so
#   1. the new image is pulled while the old container serves,
#   2. the new container starts in the free slot (gunicorn binds only once the app is loaded, so until then the
#      proxy keeps sending everything to the old one) and must answer READY_PATH with 200 within READY_TIMEOUT,
#   3. with PROXY_CONFIG set, its `reverse_proxy HOST:PORT HOST:PORT {` line is reordered to put the new slot
#      first (lb_policy first) and the proxy reloaded (PROXY_RELOAD; Caddy's reload is graceful), so new
#      requests go to the new slot before the old one is signalled,
#   4. the old container is stopped with STOP_TIMEOUT seconds to finish its in-flight requests (gunicorn's
#      graceful shutdown), then removed.
# If the new container never gets ready it is removed and the old one keeps serving; the exit status is 1.
# Running it again with the image that already serves does nothing (exit 0).
#
# Interface (environment variables; only IMAGE is required):
#   IMAGE           image reference to deploy (a digest reference in production)
#   DOCKER          container engine command, default `docker` (`podman` works the same; words split, so
#                   `podman --root DIR` works too)
#   NAME            container name prefix, default robojam (slots are NAME-a and NAME-b)
#   HOST            address the slots are published on, default 127.0.0.1 (never 0.0.0.0: only the proxy)
#   PORTS           the two slot ports, default "5001 5002"
#   CONTAINER_PORT  the port the image listens on, default 5000
#   READY_PATH      readiness path, default /readyz; READY_TIMEOUT seconds to wait for it, default 120
#   STOP_TIMEOUT    seconds the old container gets to drain, default 40 (> ROBOJAM_GRACEFUL_TIMEOUT, 30)
#   RUN_ARGS        extra `run` arguments, default: non-root, read-only, no capabilities, no new privileges
#   PULL            1 = pull IMAGE first (default); 0 = use a local image (staging)
#   PROXY_CONFIG    the Caddyfile listing the two slots; empty (default) = no switch, only the proxy's retries
#   PROXY_RELOAD    command that reloads the proxy, default `systemctl reload caddy`; SWITCH_WAIT seconds after
#                   it before the old container is stopped, default 1
#   PUBLISH         1 = publish HOST:PORT to CONTAINER_PORT (default); 0 = the engine shares the host's network
#                   (podman with netns=host): the app itself binds HOST:PORT through ROBOJAM_BIND
# The engine's own registry login applies (DOCKER_CONFIG for docker, REGISTRY_AUTH_FILE for podman).
# Needs: bash, curl and the engine. Prints one line per step; exit status 0 = IMAGE serves in one slot.
set -euo pipefail

: "${IMAGE:?set IMAGE to the image reference to deploy}"
read -r -a ENGINE <<<"${DOCKER:-docker}"
NAME=${NAME:-robojam}
HOST=${HOST:-127.0.0.1}
read -r -a SLOT_PORTS <<<"${PORTS:-5001 5002}"
CONTAINER_PORT=${CONTAINER_PORT:-5000}
READY_PATH=${READY_PATH:-/readyz}
READY_TIMEOUT=${READY_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-40}
RUN_ARGS=${RUN_ARGS:---user 10001:10001 --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges}
PULL=${PULL:-1}
PUBLISH=${PUBLISH:-1}
PROXY_CONFIG=${PROXY_CONFIG:-}
read -r -a PROXY_RELOAD <<<"${PROXY_RELOAD:-systemctl reload caddy}"
SWITCH_WAIT=${SWITCH_WAIT:-1}
SLOTS=(a b)

if [ "${#SLOT_PORTS[@]}" -ne 2 ]; then
  echo "robojam-rollout: PORTS must list two ports, got '${PORTS:-}'" >&2
  exit 2
fi

log() { echo "robojam-rollout: $*"; }

if [ -n "$PROXY_CONFIG" ]; then # the line the switch reorders must be there before anything starts
  h=${HOST//./\\.}
  slots="(${SLOT_PORTS[0]}|${SLOT_PORTS[1]})"
  line="reverse_proxy $h:$slots $h:$slots \\{"
  if ! grep -Eq "$line" "$PROXY_CONFIG"; then
    log "$PROXY_CONFIG has no 'reverse_proxy $HOST:PORT $HOST:PORT {' line for ports ${SLOT_PORTS[*]}" >&2
    exit 1
  fi
fi

running() { # running SLOT -> 0 if that slot's container is running
  [ "$("${ENGINE[@]}" inspect --format '{{.State.Running}}' "$NAME-$1" 2>/dev/null || true)" = "true" ]
}

image_of() { # image_of SLOT -> the image reference that container was started from
  "${ENGINE[@]}" inspect --format '{{.Config.Image}}' "$NAME-$1" 2>/dev/null || true
}

ready() { # ready PORT -> 0 once READY_PATH answers 200
  curl --silent --fail --max-time 2 --output /dev/null "http://$HOST:$1$READY_PATH"
}

old=""
for i in 0 1; do
  if running "${SLOTS[$i]}"; then
    old=$i
  fi
done

if [ -n "$old" ] && [ "$(image_of "${SLOTS[$old]}")" = "$IMAGE" ] && ready "${SLOT_PORTS[$old]}"; then
  log "$IMAGE already serves in slot ${SLOTS[$old]} (port ${SLOT_PORTS[$old]}); nothing to do"
  exit 0
fi

if [ "$PULL" = "1" ]; then
  log "pulling $IMAGE (the running container keeps serving)"
  "${ENGINE[@]}" pull "$IMAGE"
fi

new=$(((${old:-1} + 1) % 2))
slot=${SLOTS[$new]}
port=${SLOT_PORTS[$new]}
"${ENGINE[@]}" rm --force "$NAME-$slot" >/dev/null 2>&1 || true

log "starting $IMAGE in slot $slot on $HOST:$port"
if [ "$PUBLISH" = "1" ]; then
  network=(--publish "$HOST:$port:$CONTAINER_PORT" --env "ROBOJAM_BIND=0.0.0.0:$CONTAINER_PORT")
else
  network=(--env "ROBOJAM_BIND=$HOST:$port")
fi
# shellcheck disable=SC2086  # RUN_ARGS is a list of options
"${ENGINE[@]}" run --detach --name "$NAME-$slot" --restart unless-stopped "${network[@]}" $RUN_ARGS "$IMAGE" >/dev/null

deadline=$((SECONDS + READY_TIMEOUT))
until ready "$port"; do
  if [ "$SECONDS" -ge "$deadline" ] || ! running "$slot"; then
    log "the new container did not get ready within ${READY_TIMEOUT}s; its last log lines:"
    "${ENGINE[@]}" logs --tail 30 "$NAME-$slot" >&2 || true
    "${ENGINE[@]}" rm --force "$NAME-$slot" >/dev/null 2>&1 || true
    log "removed it; ${old:+slot ${SLOTS[$old]} keeps serving}"
    exit 1
  fi
  sleep 0.5
done
log "slot $slot is ready"

if [ -n "$PROXY_CONFIG" ]; then
  other=${SLOT_PORTS[$(((new + 1) % 2))]}
  sed -E -i "s#$line#reverse_proxy $HOST:$port $HOST:$other {#" "$PROXY_CONFIG"
  log "proxy: $HOST:$port first; reloading (${PROXY_RELOAD[*]})"
  "${PROXY_RELOAD[@]}"
  sleep "$SWITCH_WAIT"
fi

if [ -n "$old" ]; then
  log "stopping slot ${SLOTS[$old]} (up to ${STOP_TIMEOUT}s to finish its requests)"
  "${ENGINE[@]}" stop --time "$STOP_TIMEOUT" "$NAME-${SLOTS[$old]}" >/dev/null
  "${ENGINE[@]}" rm "$NAME-${SLOTS[$old]}" >/dev/null
fi
"${ENGINE[@]}" image prune --force >/dev/null 2>&1 || true
log "$IMAGE serves in slot $slot (port $port)"
