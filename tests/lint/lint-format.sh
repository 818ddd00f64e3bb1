#!/bin/sh
# Every C source and header of the repository is as clang-format (with the
# checked-in .clang-format) writes it. Prints the files that are not and
# exits 1; `clang-format -i FILE` mends one.
# Usage: tests/lint/lint-format.sh [SOURCE_DIR]
set -eu
top=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
cd "$top"
command -v clang-format >/dev/null || { echo "lint-format.sh: clang-format is not installed" >&2; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null) ||
	files=$(find . -name '*.c' -o -name '*.h' | grep -v '^\./build' | sed 's|^\./||')
bad="" n=0
for f in $files; do
	n=$((n + 1))
	clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
	echo "lint-format.sh: not as clang-format writes them (clang-format -i FILE):" >&2
	for f in $bad; do echo "  $f" >&2; done
	exit 1
fi
echo "lint-format.sh: $n C files as clang-format writes them"
