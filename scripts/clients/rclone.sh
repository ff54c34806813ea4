#!/usr/bin/env bash
# A session with rclone against a Kintsugi gateway: small and large
# (multipart) uploads and downloads with digests compared, ls, sync and
# check of a tree, ranged reads, server-side copy, deletes, and the errors
# a wrong secret and a missing key give. See common.sh for the environment.
source "$(dirname "$0")/common.sh"

# The remote "ks" lives in the environment only; the user's rclone.conf
# stays out of it.
export RCLONE_CONFIG=$WORK/rclone.conf
# rclone's SDK fails on any AWS_CA_BUNDLE, even for plain HTTP; a
# self-signed endpoint is trusted with RCLONE_CA_CERT instead.
unset AWS_CA_BUNDLE
if [ -n "${KINTSUGI_CA_CERT:-}" ]; then
	export RCLONE_CA_CERT=$KINTSUGI_CA_CERT
fi
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_KS_TYPE=s3
export RCLONE_CONFIG_KS_PROVIDER=Other
export RCLONE_CONFIG_KS_ENDPOINT=$KINTSUGI_ENDPOINT
export RCLONE_CONFIG_KS_REGION=us-east-1
export RCLONE_CONFIG_KS_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_KS_ACCESS_KEY_ID=$KINTSUGI_ACCESS_KEY
export RCLONE_CONFIG_KS_SECRET_ACCESS_KEY=$KINTSUGI_SECRET_KEY
# Multipart from 16 MiB on (rclone's default cutoff is 200 MiB), and no
# retries: every answer counts.
rc() { rclone --retries 1 --low-level-retries 1 --s3-upload-cutoff 16M --s3-chunk-size 8M "$@"; }
B=$BUCKET

step "$(rclone version | sed -n 1p)"
step "make bucket"
rc mkdir "ks:$B"

step "upload small and big (multipart) objects"
rc copyto "$SMALL_FILE" "ks:$B/small.txt"
rc copyto "$BIG_FILE" "ks:$B/dir/big.bin"
# rclone stores the MD5 of a multipart upload in metadata; its hash is
# the file's MD5 only if that round-tripped.
want=$(md5sum "$BIG_FILE" | cut -d' ' -f1)
got=$(rc md5sum "ks:$B/dir/big.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "md5 of the multipart object: $got, want $want"

step "ls"
out=$(rc ls "ks:$B")
grep -qE "^ *$BIG_SIZE dir/big.bin$" <<<"$out" || fail "ls lacks dir/big.bin: $out"
grep -q " small.txt$" <<<"$out" || fail "ls lacks small.txt: $out"
[ "$(rc lsf "ks:$B")" = "$(printf 'dir/\nsmall.txt')" ] || fail "lsf: $(rc lsf "ks:$B")"

step "download and compare"
rc copyto "ks:$B/small.txt" "$WORK/small.out"
same_file "$SMALL_FILE" "$WORK/small.out" "small download"
rc copyto "ks:$B/dir/big.bin" "$WORK/big.out"
same_file "$BIG_FILE" "$WORK/big.out" "big download"
rm "$WORK/big.out"

step "range GET"
rc cat --offset 33554400 --count 100000 "ks:$B/dir/big.bin" >"$WORK/range.out"
same_file <(slice "$BIG_FILE" 33554400 100000) "$WORK/range.out" "range read"

step "server-side copy"
rc copyto "ks:$B/small.txt" "ks:$B/copy.txt"
rc cat "ks:$B/copy.txt" >"$WORK/copy.out"
same_file "$SMALL_FILE" "$WORK/copy.out" "copy"

step "sync a tree up, change it, sync again, check, sync down"
make_tree "$WORK/tree"
rc sync "$WORK/tree" "ks:$B/tree"
change_tree "$WORK/tree"
rc sync "$WORK/tree" "ks:$B/tree"
rc check "$WORK/tree" "ks:$B/tree" 2>/dev/null || fail "rclone check found differences"
rc sync "ks:$B/tree" "$WORK/down"
same_tree "$WORK/tree" "$WORK/down"

step "rm"
rc deletefile "ks:$B/dir/big.bin"
[ -z "$(rc lsf "ks:$B/dir")" ] || fail "dir/big.bin left after deletefile"
rc purge "ks:$B/tree"
[ -z "$(rc lsf -R "ks:$B/tree")" ] || fail "tree left after purge"

step "errors: wrong secret, missing key"
expect_fail "SignatureDoesNotMatch" env RCLONE_CONFIG_KS_SECRET_ACCESS_KEY=wrong-secret rclone --retries 1 --low-level-retries 1 lsf "ks:$B"
# To rclone a name that is not an object may be a directory, so reading a
# missing key is not an error of its own: check that the gateway answered
# its HEAD with 404 and that nothing was copied, then that a missing bucket
# is an error.
out=$(rc copyto "ks:$B/no/such/key" "$WORK/missing.out" --dump headers 2>&1)
grep -q "HTTP/1.1 404 Not Found" <<<"$out" || fail "no 404 for a missing key: $out"
[ ! -e "$WORK/missing.out" ] || fail "a missing key was copied"
expect_fail "directory not found" rc lsf "ks:$B-missing"

step "remove the bucket"
rc purge "ks:$B"
step "passed"
