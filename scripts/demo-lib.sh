# Helpers of scripts/demo.sh that shape what it prints (sourced; tests/scripts/check-demo-output.sh
# checks them against tests/golden/demo-commands.txt).

# shell_quote ARG...: the words as one line a shell reads back as the same words. A word of
# only safe characters stays as it is; any other is single-quoted ('\'' for a quote inside), so
# JSON reads as -p '{"spec":{"stage":"Prep"}}' rather than printf %q's backslashes.
shell_quote() {
  local out="" word
  for word in "$@"; do
    if [ -n "$word" ] && [ -z "${word//[A-Za-z0-9_.\/:=@%+,-]/}" ]; then
      out+="${out:+ }$word"
    else
      out+="${out:+ }'${word//\'/\'\\\'\'}'"
    fi
  done
  printf '%s\n' "$out"
}

# echo_command ARG...: the "$ command" line a command's output comes under.
echo_command() {
  printf '$ %s\n' "$(shell_quote "$@")"
}

# prep_patch REGISTRY EXTRA_SPEC EXTRA_TOP: the demo's Prep patch for REGISTRY/ibu/seed:4.15.2,
# with EXTRA_SPEC inside "spec" and EXTRA_TOP beside it (each "" or starting with a comma).
prep_patch() {
  printf '{"spec":{"stage":"Prep","seedImageRef":{"version":"4.15.2","image":"%s","pullSecretRef":{"name":"seed-pull-secret"}}%s}%s}' \
    "$1/ibu/seed:4.15.2" "$2" "$3"
}

# demo_phase TEXT: one line per phase of the demo's setup.
demo_phase() {
  printf 'demo: %s\n' "$*"
}

# quietly LOG COMMAND...: runs the command with its output in LOG; on failure prints the last
# 40 lines of LOG and exits with its status.
quietly() {
  local log=$1 rc=0
  shift
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf 'demo: failed (exit %s): %s\n--- last lines of %s ---\n' "$rc" "$(shell_quote "$@")" \
      "$log" >&2
    tail -n 40 "$log" >&2
    exit "$rc"
  fi
}
