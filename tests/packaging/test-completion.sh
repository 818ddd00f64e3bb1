#!/bin/bash
# bash completion for mbxctl: subcommands, opcode names, and device names
# asked from a real mbxd on the sim devices.
# Usage: test-completion.sh SOURCE_DIR MBXD MBXCTL
set -eu
src=$(realpath "$1") mbxd=$(realpath "$2") mbxctl=$(realpath "$3")
work=$(mktemp -d /tmp/mbxd-completion-XXXXXX)
pid=""
# mbxd writes its audit checkpoint as it stops: wait for it before removing the folder.
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "test-completion: $*" >&2; exit 1; }

[ -f /usr/share/bash-completion/bash_completion ] ||
	fail "bash-completion is not installed (conf/install-deps.sh installs it)"
mkdir -p "$work/bin"
ln -s "$mbxctl" "$work/bin/mbxctl"
cat >"$work/mbxd.yaml" <<YAML
socket: { path: $work/mbxd.sock, mode: "0666" }
policy: $work/policy.yaml
audit: { path: $work/audit.jsonl }
devices:
  - { name: mem0, transport: sim, options: { model: memdev } }
  - { name: switch0, transport: sim, options: { model: switch } }
YAML
# DEVICES lists only devices the asking user may use, so the devices need a rule.
printf 'version: 1\nrules:\n  - { name: read-all, who: any, devices: ["*"], allow: [read] }\n' \
	>"$work/policy.yaml"
chmod 644 "$work"/*.yaml
"$mbxd" -d --no-sandbox -f "$work/mbxd.yaml" 2>"$work/mbxd.log" &
pid=$!
# Ready when it answers, not when the socket file appears (bind comes before listen).
for _ in $(seq 100); do
	"$mbxctl" --socket "$work/mbxd.sock" devices >/dev/null 2>&1 && break
	sleep 0.1
done
"$mbxctl" --socket "$work/mbxd.sock" devices >/dev/null ||
	fail "mbxd did not start: $(cat "$work/mbxd.log")"

# Completes the words of a command line (the last word is the one completed).
complete_words() {
	PATH="$work/bin:$PATH" bash -c '
		source /usr/share/bash-completion/bash_completion
		source "$1/conf/bash-completion/mbxctl"
		shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_mbxctl
		printf "%s\n" "${COMPREPLY[@]}"' _ "$src" "$@"
}

expect() {
	local want=$1; shift
	local got
	got=$(complete_words "$@" | sort | tr '\n' ' ')
	case " $got" in
	*" $want "*) ;;
	*) fail "completing '$*' gave [$got], expected it to offer $want" ;;
	esac
}

expect health mbxctl he
expect help mbxctl he
expect identify mbxctl id
expect mem0 mbxctl --socket "$work/mbxd.sock" identify ""
expect switch0 mbxctl --socket "$work/mbxd.sock" health sw
expect sanitize mbxctl --socket "$work/mbxd.sock" send mem0 san
echo "test-completion: subcommands, device names from mbxd and opcode names complete"
