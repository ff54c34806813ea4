#!/usr/bin/env bash
# A session with s3cmd against a Kintsugi gateway: small and large
# (multipart) uploads and downloads with digests compared, ls, sync of a
# tree, a ranged (resumed) download, server-side copy, rm, and the errors a
# wrong secret and a missing key give. See common.sh for the environment.
source "$(dirname "$0")/common.sh"

# s3cmd speaks path-style when host_bucket has no %(bucket)s.
hostport=${KINTSUGI_ENDPOINT#*://}
https=False
[[ $KINTSUGI_ENDPOINT == https://* ]] && https=True
write_config() {
	cat >"$1" <<CFG
[default]
access_key = $KINTSUGI_ACCESS_KEY
secret_key = $2
host_base = $hostport
host_bucket = $hostport
use_https = $https
signature_v2 = False
bucket_location = us-east-1
multipart_chunk_size_mb = 15
CFG
}
write_config "$WORK/s3cfg" "$KINTSUGI_SECRET_KEY"
write_config "$WORK/s3cfg-wrong" "wrong-secret"
s3c() { s3cmd -c "$WORK/s3cfg" --no-progress "$@"; }
B=$BUCKET

step "$(s3cmd --version)"
step "make bucket"
s3c mb "s3://$B" >/dev/null

step "upload small and big (multipart) objects"
s3c put "$SMALL_FILE" "s3://$B/small.txt" >/dev/null
s3c put "$BIG_FILE" "s3://$B/dir/big.bin" >/dev/null
info=$(s3c info "s3://$B/dir/big.bin")
grep -qE "MD5 sum: +[0-9a-f]{32}$" <<<"$info" || fail "info lacks the MD5 s3cmd stores: $info"
grep -qE "File size: +$BIG_SIZE$" <<<"$info" || fail "info: wrong size: $info"

step "ls"
out=$(s3c ls "s3://$B/")
grep -q "DIR +s3://$B/dir/$" <<<"$out" || grep -qE "DIR +s3://$B/dir/" <<<"$out" || fail "ls lacks the prefix dir/: $out"
grep -q "s3://$B/small.txt$" <<<"$out" || fail "ls lacks small.txt: $out"
out=$(s3c ls -r "s3://$B/")
grep -qE " $BIG_SIZE +s3://$B/dir/big.bin$" <<<"$out" || fail "ls -r lacks dir/big.bin: $out"

step "download and compare (s3cmd checks the MD5 itself)"
s3c get "s3://$B/small.txt" "$WORK/small.out" >/dev/null
same_file "$SMALL_FILE" "$WORK/small.out" "small download"
s3c get "s3://$B/dir/big.bin" "$WORK/big.out" >/dev/null
same_file "$BIG_FILE" "$WORK/big.out" "big download"

step "range GET: resume a partial download"
head -c 60000000 "$BIG_FILE" >"$WORK/partial.out"
s3c get --continue "s3://$B/dir/big.bin" "$WORK/partial.out" >/dev/null
same_file "$BIG_FILE" "$WORK/partial.out" "resumed download"
rm "$WORK/big.out" "$WORK/partial.out"

step "server-side copy"
s3c cp "s3://$B/small.txt" "s3://$B/copy.txt" >/dev/null
s3c get "s3://$B/copy.txt" "$WORK/copy.out" >/dev/null
same_file "$SMALL_FILE" "$WORK/copy.out" "copy"

step "sync a tree up, change it, sync again, sync down"
make_tree "$WORK/tree"
s3c sync "$WORK/tree/" "s3://$B/tree/" >/dev/null
change_tree "$WORK/tree"
s3c sync --delete-removed "$WORK/tree/" "s3://$B/tree/" >/dev/null
mkdir "$WORK/down"
s3c sync "s3://$B/tree/" "$WORK/down/" >/dev/null
# s3cmd does not recreate empty directories; the tree has none.
same_tree "$WORK/tree" "$WORK/down"

step "rm"
s3c del "s3://$B/dir/big.bin" >/dev/null
expect_fail "404|Not Found|not found" s3c info "s3://$B/dir/big.bin"
s3c del --recursive --force "s3://$B/tree/" >/dev/null
[ -z "$(s3c ls -r "s3://$B/tree/")" ] || fail "tree left after del --recursive"

step "errors: wrong secret, missing key"
expect_fail "SignatureDoesNotMatch|403" s3cmd -c "$WORK/s3cfg-wrong" ls "s3://$B/"
expect_fail "404|NoSuchKey|does not exist" s3c get "s3://$B/no/such/key" "$WORK/missing.out"

step "remove the bucket"
s3c del --recursive --force "s3://$B/" >/dev/null
s3c rb "s3://$B" >/dev/null
step "passed"
