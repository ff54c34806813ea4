#!/usr/bin/env bash
# compare.sh runs the six-row comparison (PUT and GET of 16 MiB and 1 MiB
# objects at 8 in flight, 4 KiB objects at 16 in flight) against one S3
# endpoint, or two side by side with a ratio column, and prints a markdown
# table:
#
#   scripts/compare.sh ENDPOINT AK SK [ENDPOINT2 AK2 SK2]
#   DURATION=5s LABELS=kintsugi,minio scripts/compare.sh http://127.0.0.1:9000 AK SK http://127.0.0.1:9100 AK2 SK2
#
# It is `kintsugi bench compare`, which does the work (and whose flags may
# be given before the endpoints: scripts/compare.sh --warmup 2s ...). The
# binary is $KINTSUGI, else bin/kintsugi, else kintsugi on the PATH.
set -euo pipefail

bin=${KINTSUGI:-}
if [[ -z $bin ]]; then
	root=$(cd "$(dirname "$0")/.." && pwd)
	if [[ -x $root/bin/kintsugi ]]; then
		bin=$root/bin/kintsugi
	else
		bin=kintsugi
	fi
fi
flags=(--duration "${DURATION:-15s}")
if [[ -n ${LABELS:-} ]]; then
	flags+=(--labels "$LABELS")
fi
exec "$bin" bench compare "${flags[@]}" "$@"
