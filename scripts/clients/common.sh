# Shared helpers of the client sessions in this directory; sourced by each
# session script, never run on its own.
#
# A session needs, in the environment:
#   KINTSUGI_ENDPOINT    S3 endpoint, e.g. http://127.0.0.1:9000
#   KINTSUGI_ACCESS_KEY  access key
#   KINTSUGI_SECRET_KEY  secret key
#   BUCKET               a bucket name the session may create and delete
#   WORK                 an empty scratch directory
#   BIG_FILE             (optional) a large file to upload; 100 MiB are
#                        generated in WORK when it is not set
# and exits 0 only if every step passed.

set -euo pipefail

: "${KINTSUGI_ENDPOINT:?set KINTSUGI_ENDPOINT}"
: "${KINTSUGI_ACCESS_KEY:?set KINTSUGI_ACCESS_KEY}"
: "${KINTSUGI_SECRET_KEY:?set KINTSUGI_SECRET_KEY}"
: "${BUCKET:?set BUCKET}"
: "${WORK:?set WORK}"

# Nothing of the caller's AWS setup may leak into a session.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3

CLIENT=${CLIENT:-$(basename "$0" .sh)}
SECONDS=0

step() { echo "== $CLIENT [${SECONDS}s]: $*"; }

fail() {
	echo "FAIL $CLIENT: $*" >&2
	exit 1
}

digest() { sha256sum "$1" | cut -d' ' -f1; }

# same_file WANT GOT WHAT: the two files have the same sha256.
same_file() {
	[ "$(digest "$1")" = "$(digest "$2")" ] || fail "$3: $2 differs from $1"
}

# expect_fail PATTERN CMD...: CMD must fail and print something matching
# the extended regular expression PATTERN.
expect_fail() {
	local pat=$1 out
	shift
	if out=$("$@" 2>&1); then
		fail "expected a failure, but it succeeded: $*"
	fi
	grep -qE "$pat" <<<"$out" || fail "$*: output does not match /$pat/: $out"
}

# slice FILE OFFSET LENGTH: bytes [OFFSET, OFFSET+LENGTH) of FILE.
slice() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K status=none; }

# make_tree DIR: a small directory tree with nested names, spaces and
# non-ASCII characters.
make_tree() {
	mkdir -p "$1/a/b/c" "$1/docs and notes" "$1/ünï"
	local i
	for i in 1 2 3; do
		head -c $((i * 1000 + 7)) /dev/urandom >"$1/a/file$i.bin"
	done
	echo "deep" >"$1/a/b/c/deep.txt"
	echo "spaces" >"$1/docs and notes/read me.txt"
	echo "unicode" >"$1/ünï/名前.txt"
	: >"$1/empty"
}

# change_tree DIR: edits, adds and removes a file, for a second sync.
change_tree() {
	echo "changed" >>"$1/a/file1.bin"
	echo "new" >"$1/a/b/new.txt"
	rm "$1/a/file2.bin"
}

# same_tree WANT GOT: the two trees hold the same files with the same bytes.
same_tree() {
	diff -r "$1" "$2" >/dev/null || fail "trees differ: $(diff -rq "$1" "$2" | head -5)"
}

SMALL_FILE=$WORK/small.txt
printf 'small object, %s\n' "$CLIENT" >"$SMALL_FILE"
if [ -z "${BIG_FILE:-}" ]; then
	BIG_FILE=$WORK/big.bin
	head -c $((100 << 20)) /dev/urandom >"$BIG_FILE"
fi
BIG_SIZE=$(stat -c %s "$BIG_FILE")
