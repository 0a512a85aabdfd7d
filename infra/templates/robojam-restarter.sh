#!/usr/bin/env bash
# RoboJam training restarter: starts the training VM again after a preemption (or a host event) stopped it.
# Runs as a Cloud Run job that Cloud Scheduler executes every few minutes (infra/components/restarter.py), under a
# service account that may only get and start this one VM and read and write the run's status objects. Plain shell
# with its settings in the environment, so it runs outside Pulumi too (staging runs it against stand-ins).
# It never starts: a VM that is not stopped (TERMINATED); a run that never booted (no STATUS/started); a finished,
# failed or held run (STATUS/done, STATUS/failed, STATUS/hold: write `hold` to stop a run by hand for good); a run
# that was restarted MAX_RESTARTS times or started MAX_TOTAL_SECONDS ago.
set -euo pipefail
: "${INSTANCE:?}" "${ZONE:?}" "${PROJECT:?}" "${STATUS_URI:?}" "${MAX_RESTARTS:?}" "${MAX_TOTAL_SECONDS:?}"

say() {
  echo "robojam-restarter: $*"
}

state=$(gcloud compute instances describe "$INSTANCE" --zone "$ZONE" --project "$PROJECT" --format 'value(status)')
if [ "$state" != TERMINATED ]; then
  say "$INSTANCE is $state: nothing to do."
  exit 0
fi
# An unreadable status counts as no status: the restarter errs on the side of not starting a GPU.
if ! listing=$(gcloud storage ls "$STATUS_URI/" 2>/dev/null); then
  say "no status under $STATUS_URI: the run never booted; nothing to do."
  exit 0
fi
has() {
  grep -qx "$STATUS_URI/$1" <<<"$listing"
}
for marker in "done" failed hold; do
  if has "$marker"; then
    say "the run is marked $marker ($STATUS_URI/$marker): never restarted."
    exit 0
  fi
done
if ! has started; then
  say "the run never booted: nothing to do."
  exit 0
fi
started=$(gcloud storage cat "$STATUS_URI/started")
restarts=0
if has restarts; then
  restarts=$(gcloud storage cat "$STATUS_URI/restarts")
fi
elapsed=$(($(date +%s) - started))
if [ "$restarts" -ge "$MAX_RESTARTS" ]; then
  say "restart cap reached ($restarts of $MAX_RESTARTS): not restarting $INSTANCE."
  exit 0
fi
if [ "$elapsed" -ge "$MAX_TOTAL_SECONDS" ]; then
  say "run time cap reached (${elapsed} s of ${MAX_TOTAL_SECONDS} s since the first boot): not restarting $INSTANCE."
  exit 0
fi
# --async: waiting on the zone operation would need a project-wide permission; the next run sees the outcome.
gcloud compute instances start "$INSTANCE" --zone "$ZONE" --project "$PROJECT" --async
count=$(mktemp)
echo $((restarts + 1)) >"$count"
gcloud storage cp "$count" "$STATUS_URI/restarts"
rm -f "$count"
say "started $INSTANCE again: restart $((restarts + 1)) of $MAX_RESTARTS, ${elapsed} s of ${MAX_TOTAL_SECONDS} s used."
