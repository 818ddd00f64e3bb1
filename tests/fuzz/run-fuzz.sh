#!/bin/sh
# Runs one libFuzzer target for a bounded time: new inputs go to a work
# corpus in the build folder (the seeds in the repository stay as they are),
# crash reproducers to the same folder. Leaves stats.txt there for
# tests/reliability/report.sh. Exit status: libFuzzer's (non-zero on any
# crash, sanitizer report, leak or slow input).
# Usage: run-fuzz.sh BINARY SEED_DIR WORK_DIR SECONDS
set -eu
bin=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work/corpus"
rc=0
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$work/" "$work/corpus" "$seeds" >"$work/log.txt" 2>&1 || rc=$?
tail -n 40 "$work/log.txt"
{
	echo "seconds=$secs"
	echo "seeds=$(find "$seeds" -type f | wc -l)"
	echo "corpus=$(find "$work/corpus" "$seeds" -type f | wc -l)"
	grep -E '^stat::' "$work/log.txt" | sed 's/^stat:://; s/: */=/'
	echo "exit=$rc"
} >"$work/stats.txt"
exit $rc
