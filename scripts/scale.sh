#!/usr/bin/env bash
# scale.sh measures how a `kintsugi dev` cluster behaves as it fills up and
# how much memory it holds:
#
#   idle   RSS of an empty, idle `kintsugi dev`, right after start and after
#          IDLE_SECONDS, with the embedded scrubber off and on.
#   mem    peak RSS of `kintsugi dev` (gateway and 6 nodes in one process)
#          while `kintsugi bench` sends 32 concurrent 64 MiB PUTs.
#   scale  fills one cluster with 4 KiB objects in STEPS and, at every step,
#          measures PUT and GET latency and the time of ListObjectsV2 pages
#          at the start and deep inside the keyspace; then the RSS of the
#          filled cluster, idle with the scrubber passing over it.
#
# Every RSS figure is split into anon (the Go heap and the rest of the
# process's private memory) and file (file pages mapped into it: mostly the
# nodes' badger tables, which badger reads and writes through mmap; page
# cache the kernel can take back). After each idle measurement a heap
# profile of the process is kept under OUT (`go tool pprof -sample_index=
# inuse_space bin/kintsugi OUT/<name>.heap.pb.gz`).
#
# Usage: scripts/scale.sh [idle] [mem] [scale]   (default: all three)
#
# Environment (defaults in brackets):
#   STEPS [1000 5000 10000]   object counts to measure at
#   MAX_SECONDS [1500]        the whole run stops after this long
#   IDLE_SECONDS [30]         idle wait for the RSS samples
#   BIG_SIZE [64MiB] BIG_CONCURRENCY [32] BIG_COUNT [64]   the mem phase's load
#   OUT [a new temporary directory]  where results are kept; it survives the run
#   PROBE_PUTS [200] PROBE_GETS [500] PROBE_CONCURRENCY [8] FILL_CONCURRENCY [16]
#   KINTSUGI_BIN [bin/kintsugi]  the binary to run
#   SKIP_BUILD=1              do not run `make build` first
#
# Every result is a JSON or text file under OUT, and a summary goes to
# stdout. The script kills only the processes it started, and removes its
# cluster data when it exits.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${KINTSUGI_BIN:-bin/kintsugi}
STEPS=${STEPS:-"1000 5000 10000"}
MAX_SECONDS=${MAX_SECONDS:-1500}
IDLE_SECONDS=${IDLE_SECONDS:-30}
BIG_SIZE=${BIG_SIZE:-64MiB}
BIG_CONCURRENCY=${BIG_CONCURRENCY:-32}
BIG_COUNT=${BIG_COUNT:-64}
PROBE_PUTS=${PROBE_PUTS:-200}
PROBE_GETS=${PROBE_GETS:-500}
PROBE_CONCURRENCY=${PROBE_CONCURRENCY:-8}
FILL_CONCURRENCY=${FILL_CONCURRENCY:-16}
BUCKET=kintsugi-bench
REGION=us-east-1

export KINTSUGI_ACCESS_KEY=${KINTSUGI_ACCESS_KEY:-scalekey}
export KINTSUGI_SECRET_KEY=${KINTSUGI_SECRET_KEY:-scalesecret1234567890}

DEADLINE=$((SECONDS + MAX_SECONDS))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kintsugi-scale.XXXXXX")
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/kintsugi-scale-out.XXXXXX")}
mkdir -p "$OUT"
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# left prints the seconds left before DEADLINE; it fails when none are.
left() {
	local n=$((DEADLINE - SECONDS))
	if ((n <= 0)); then
		log "time limit of ${MAX_SECONDS}s reached"
		return 1
	fi
	echo "$n"
}

# forget drops pid from PIDS once it has been stopped.
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# start_dev DIR LOG [FLAGS...] starts `kintsugi dev` on free loopback ports
# and sets DEV_PID and EP (the S3 endpoint) from its ready line.
start_dev() {
	local dir=$1 out=$2
	shift 2
	: >"$out" # exists before the first look for the ready line
	"$BIN" dev --data "$dir" --listen 127.0.0.1:0 --node-base-port 0 \
		--scrub-listen 127.0.0.1:0 --pprof 127.0.0.1:0 "$@" >"$out" 2>&1 &
	DEV_PID=$!
	PIDS+=("$DEV_PID")
	local i line
	for ((i = 0; i < 300; i++)); do
		line=$(grep -m1 '^ready addr=' "$out" || true)
		if [[ -n $line ]]; then
			line=${line#ready addr=}
			EP="http://${line%% *}"
			PPROF=$(grep -m1 -o 'url=http://[^ ]*/debug/pprof/' "$out" | cut -d= -f2 || true)
			return 0
		fi
		kill -0 "$DEV_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "kintsugi dev did not start:"
	cat "$out" >&2
	return 1
}

stop_dev() {
	kill "$DEV_PID" 2>/dev/null || true
	wait "$DEV_PID" 2>/dev/null || true
	forget "$DEV_PID"
}

# rss PID prints "VmRSS VmHWM RssAnon RssFile" in KiB.
rss() {
	awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {print r, h, a, f}' "/proc/$1/status"
}

mib() { echo $(($1 / 1024)); }

# mem "VmRSS VmHWM RssAnon RssFile" prints them for a summary line.
mem() {
	local r h a f
	read -r r h a f <<<"$1"
	echo "VmRSS=$(mib "$r")MiB (anon $(mib "$a"), file $(mib "$f")) VmHWM=$(mib "$h")MiB"
}

# heapprof NAME keeps a heap profile of the dev process as OUT/NAME.heap.pb.gz.
heapprof() {
	[[ -n ${PPROF:-} ]] || return 0
	curl -sS --fail -o "$OUT/$1.heap.pb.gz" "${PPROF}heap" || log "heap profile $1 failed"
}

# run runs a command in the background and waits for it, so that an
# interrupt reaches the traps at once rather than after the command.
run() {
	local pid rc=0
	"$@" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget "$pid"
	return "$rc"
}

# kbench runs `kintsugi bench` against EP, bounded by the time left.
kbench() {
	local t
	t=$(left) || return 124
	run timeout --signal=INT --kill-after=10 "$t" "$BIN" bench --endpoint "$EP" --bucket "$BUCKET" "$@"
}

# listpage START_AFTER prints "keys seconds" for one ListObjectsV2 page of
# 1000 keys under scale/, signed by curl. curl (7.x) signs the query string
# as it is given, so the parameters must be sorted and encoded already.
listpage() {
	local q="list-type=2&max-keys=1000&prefix=scale%2F"
	[[ -n $1 ]] && q+="&start-after=${1//\//%2F}"
	local body=$WORK/list.xml t
	t=$(curl -sS -o "$body" -w '%{time_total}' --fail \
		--aws-sigv4 "aws:amz:$REGION:s3" --user "$KINTSUGI_ACCESS_KEY:$KINTSUGI_SECRET_KEY" \
		"$EP/$BUCKET?$q")
	echo "$(grep -o '<Key>' "$body" | wc -l) $t"
}

# listprobe NAME START_AFTER times the same page 7 times and prints
# "NAME keys=K min_ms=... median_ms=... max_ms=...".
listprobe() {
	local name=$1 after=$2 i keys t times=()
	for ((i = 0; i < 7; i++)); do
		read -r keys t < <(listpage "$after")
		times+=("$t")
	done
	printf '%s\n' "${times[@]}" | sort -g | awk -v n="$name" -v k="$keys" \
		'{a[NR] = $1 * 1000} END {printf "%s keys=%d min_ms=%.1f median_ms=%.1f max_ms=%.1f\n", n, k, a[1], a[4], a[NR]}'
}

# keys PREFIX COUNT appends the names a `kintsugi bench put` run of COUNT
# 4 KiB objects gives under PREFIX to the key list.
keys() {
	awk -v p="$1" -v n="$2" 'BEGIN {for (i = 0; i < n; i++) print p "obj-" i "-4096"}' >>"$WORK/keys.txt"
}

# keyat FRACTION prints the key at that depth of the sorted listing.
keyat() {
	local n
	n=$(wc -l <"$WORK/keys.sorted")
	sed -n "$(awk -v f="$1" -v n="$n" 'BEGIN {print int(f * n) + 1}')p" "$WORK/keys.sorted"
}

# summary FILE prints the interesting fields of a `kintsugi bench --json` report.
summary() {
	jq -r '"\(.op) n=\(.objects) ops/s=\(.ops_per_s|floor) p50=\(.p50_ms)ms p99=\(.p99_ms)ms max=\(.max_ms)ms errors=\(.errors) verify_failures=\(.verify_failures)" + (if .keys then " keys=\(.keys)" else "" end)' "$1" 2>/dev/null ||
		echo "${1##*/}: no report"
}

phase_idle() {
	local mode flags before after
	for mode in off on; do
		left >/dev/null
		flags=(--scrub-interval 0)
		# A short interval makes the scrubber pass several times while idle.
		[[ $mode == on ]] && flags=(--scrub-interval 10s)
		start_dev "$WORK/idle-$mode" "$OUT/idle-$mode.log" "${flags[@]}"
		before=$(rss "$DEV_PID")
		run sleep "$IDLE_SECONDS"
		after=$(rss "$DEV_PID")
		heapprof "idle-$mode"
		stop_dev
		rm -rf "$WORK/idle-$mode"
		echo "idle scrubber=$mode start: $(mem "$before"); after ${IDLE_SECONDS}s: $(mem "$after")" |
			tee -a "$OUT/summary.txt"
	done
}

phase_mem() {
	left >/dev/null
	start_dev "$WORK/mem" "$OUT/mem.log" --scrub-interval 0
	local samples=$OUT/mem-rss.txt
	: >"$samples"
	(
		while kill -0 "$DEV_PID" 2>/dev/null; do
			echo "$(date +%s.%N) $(rss "$DEV_PID")" >>"$samples" 2>/dev/null || true
			sleep 0.2
		done
	) &
	local sampler=$!
	PIDS+=("$sampler")
	local rc=0
	kbench put --size "$BIG_SIZE" --concurrency "$BIG_CONCURRENCY" --count "$BIG_COUNT" \
		--prefix big/ --json >"$OUT/mem-put.json" || rc=$?
	local end
	end=$(rss "$DEV_PID")
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	forget "$sampler"
	stop_dev
	rm -rf "$WORK/mem"
	local peak n
	peak=$(awk '$2 > m {m = $2} END {print m + 0}' "$samples")
	n=$(wc -l <"$samples")
	read -r _ hwm _ <<<"$end"
	{
		echo "mem $BIG_CONCURRENCY x $BIG_SIZE PUTs (exit $rc): $(summary "$OUT/mem-put.json" 2>/dev/null || echo 'no report')"
		echo "mem peak VmRSS=$(mib "$peak")MiB over $n samples at 200ms; VmHWM=$(mib "$hwm")MiB"
	} | tee -a "$OUT/summary.txt"
}

phase_scale() {
	left >/dev/null
	local dir=$WORK/scale have=0 step=0 target need r h
	: >"$WORK/keys.txt"
	start_dev "$dir" "$OUT/scale.log" --scrub-interval 0
	for target in $STEPS; do
		left >/dev/null || break
		# Every `kintsugi bench put` run numbers its keys from 0, so each
		# run gets its own prefix under scale/ to add objects, not replace.
		step=$((step + 1))
		need=$((target - have - PROBE_PUTS))
		if ((need > 0)); then
			log "filling to $((have + need)) objects"
			kbench put --size 4KiB --count "$need" --concurrency "$FILL_CONCURRENCY" \
				--prefix "scale/f$(printf %02d $step)/" --json >"$OUT/scale-$target-fill.json" ||
				log "fill: kintsugi bench exited with $?"
			keys "scale/f$(printf %02d $step)/" "$need"
			have=$((have + need))
		fi
		log "measuring at $target objects"
		kbench put --size 4KiB --count "$PROBE_PUTS" --concurrency "$PROBE_CONCURRENCY" \
			--prefix "scale/p$(printf %02d $step)/" --json >"$OUT/scale-$target-put.json" ||
			log "put probe: kintsugi bench exited with $?"
		keys "scale/p$(printf %02d $step)/" "$PROBE_PUTS"
		have=$((have + PROBE_PUTS))
		LC_ALL=C sort "$WORK/keys.txt" >"$WORK/keys.sorted"
		# The same objects, the first ones written, are read at every step,
		# so that only the number of objects stored changes.
		kbench get --size 4KiB --count "$PROBE_GETS" --concurrency "$PROBE_CONCURRENCY" \
			--prefix scale/f01/ --json >"$OUT/scale-$target-get.json" ||
			log "get probe: kintsugi bench exited with $?"
		# One walker pages from the first key on, through every depth.
		kbench list --count $((have / 1000 + 1)) --concurrency 1 --page-size 1000 \
			--prefix scale/ --json >"$OUT/scale-$target-list.json" ||
			log "list walk: kintsugi bench exited with $?"
		{
			echo "== $have objects stored (dev $(mem "$(rss "$DEV_PID")"), data $(du -sh "$dir" | cut -f1))"
			if [[ -f $OUT/scale-$target-fill.json ]]; then
				echo "fill: $(summary "$OUT/scale-$target-fill.json")"
			fi
			summary "$OUT/scale-$target-put.json"
			summary "$OUT/scale-$target-get.json"
			summary "$OUT/scale-$target-list.json"
			listprobe "list-page-at-0" ""
			listprobe "list-page-at-0.5" "$(keyat 0.5)"
			listprobe "list-page-at-0.9" "$(keyat 0.9)"
		} | tee -a "$OUT/summary.txt"
	done
	stop_dev

	# The filled cluster idle, with the scrubber verifying what it holds.
	left >/dev/null || return 0
	start_dev "$dir" "$OUT/scale-idle.log" --scrub-interval 10s
	local before after
	before=$(rss "$DEV_PID")
	run sleep "$IDLE_SECONDS"
	after=$(rss "$DEV_PID")
	heapprof "scale-idle"
	stop_dev
	echo "idle with $have objects, scrubber=on: start $(mem "$before"); after ${IDLE_SECONDS}s $(mem "$after")" |
		tee -a "$OUT/summary.txt"
	rm -rf "$dir"
}

main() {
	if [[ -z ${SKIP_BUILD:-} ]]; then
		make build >&2
	fi
	local phases=("$@")
	((${#phases[@]})) || phases=(idle mem scale)
	local p
	for p in "${phases[@]}"; do
		case $p in
		idle | mem | scale) ;;
		*)
			echo "usage: $0 [idle] [mem] [scale]" >&2
			exit 2
			;;
		esac
	done
	log "results in $OUT"
	for p in "${phases[@]}"; do
		log "phase $p"
		"phase_$p"
	done
}

main "$@"
