#!/bin/sh
# Every shell script of the repository parses under the shell it names
# (dash for /bin/sh: Debian's /bin/sh) and passes shellcheck at warning
# level, sourced libraries followed (.shellcheckrc). Prints each finding;
# exits 1 if there is any.
# Usage: tests/lint/lint-shell.sh [SOURCE_DIR]
set -eu
top=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
cd "$top"
command -v shellcheck >/dev/null || { echo "lint-shell.sh: shellcheck is not installed" >&2; exit 1; }
scripts=$(git ls-files '*.sh' .ci/run 2>/dev/null) ||
	scripts=$(find . -name '*.sh' -not -path './build*' | sed 's|^\./||'; echo .ci/run)
bad=0 n=0
for f in $scripts; do
	n=$((n + 1))
	case $(head -n1 "$f") in
	'#!/bin/bash'*) shell=bash ;;
	*) shell=dash ;;
	esac
	if ! "$shell" -n "$f"; then
		echo "lint-shell.sh: $f does not parse under $shell" >&2
		bad=1
	fi
done
# shellcheck disable=SC2086 # one argument per script name
if ! shellcheck -x -S warning -f gcc $scripts; then
	echo "lint-shell.sh: shellcheck found the warnings above" >&2
	bad=1
fi
[ "$bad" = 0 ] && echo "lint-shell.sh: $n scripts parse and pass shellcheck -S warning"
exit "$bad"
