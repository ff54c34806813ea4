#!/usr/bin/env bash
# A session with the aws cli against a Kintsugi gateway: small and large
# (multipart) uploads and downloads with digests compared, ls, sync of a
# tree, range GET, server-side copy, checksums, rm, and the errors a wrong
# secret and a missing key give. See common.sh for the environment.
source "$(dirname "$0")/common.sh"

export AWS_ACCESS_KEY_ID=$KINTSUGI_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$KINTSUGI_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# Keep the user's own configuration out of the session.
export AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

s3() { aws --endpoint-url "$KINTSUGI_ENDPOINT" s3 "$@"; }
s3q() { aws --endpoint-url "$KINTSUGI_ENDPOINT" s3 "$@" --only-show-errors; }
s3api() { aws --endpoint-url "$KINTSUGI_ENDPOINT" s3api "$@"; }
B=$BUCKET

step "$(aws --version 2>&1)"
step "make bucket"
s3 mb "s3://$B"

step "upload small and big (multipart) objects"
s3q cp "$SMALL_FILE" "s3://$B/small.txt"
s3q cp "$BIG_FILE" "s3://$B/dir/big.bin"
read -r etag size < <(s3api head-object --bucket "$B" --key dir/big.bin --query '[ETag,ContentLength]' --output text)
[[ $etag == *-* ]] || fail "big upload was not multipart: ETag $etag"
[ "$size" = "$BIG_SIZE" ] || fail "big object is $size bytes, want $BIG_SIZE"

step "upload with a checksum"
sum=$(s3api put-object --bucket "$B" --key summed.txt --body "$SMALL_FILE" --checksum-algorithm CRC32 --query ChecksumCRC32 --output text)
[ -n "$sum" ] && [ "$sum" != None ] || fail "no CRC32 echoed on upload"
got=$(s3api head-object --bucket "$B" --key summed.txt --checksum-mode ENABLED --query ChecksumCRC32 --output text)
[ "$got" = "$sum" ] || fail "HEAD with checksum mode: CRC32 $got, want $sum"

step "ls"
out=$(s3 ls "s3://$B/")
grep -q "PRE dir/$" <<<"$out" || fail "ls lacks the prefix dir/: $out"
grep -q " $(stat -c %s "$SMALL_FILE") small.txt$" <<<"$out" || fail "ls lacks small.txt: $out"
out=$(s3 ls "s3://$B/dir/")
grep -q " $BIG_SIZE big.bin$" <<<"$out" || fail "ls lacks dir/big.bin: $out"

step "download and compare"
s3q cp "s3://$B/small.txt" "$WORK/small.out"
same_file "$SMALL_FILE" "$WORK/small.out" "small download"
s3q cp "s3://$B/dir/big.bin" "$WORK/big.out"
same_file "$BIG_FILE" "$WORK/big.out" "big download"
rm "$WORK/big.out"

step "range GET"
s3api get-object --bucket "$B" --key dir/big.bin --range bytes=8388000-8390999 "$WORK/range.out" >/dev/null
slice "$BIG_FILE" 8388000 3000 >"$WORK/range.want"
same_file "$WORK/range.want" "$WORK/range.out" "range GET"

step "server-side copy"
s3q cp "s3://$B/dir/big.bin" "s3://$B/copy.bin"
size=$(s3api get-object --bucket "$B" --key copy.bin --range bytes=50000000-50099999 "$WORK/copy-range.out" --query ContentRange --output text)
[ "$size" = "bytes 50000000-50099999/$BIG_SIZE" ] || fail "range of the copy: $size"
same_file <(slice "$BIG_FILE" 50000000 100000) "$WORK/copy-range.out" "range of the copy"

step "sync a tree up, change it, sync again, sync down"
make_tree "$WORK/tree"
s3q sync "$WORK/tree" "s3://$B/tree"
change_tree "$WORK/tree"
s3q sync "$WORK/tree" "s3://$B/tree" --delete
s3q sync "s3://$B/tree" "$WORK/down"
same_tree "$WORK/tree" "$WORK/down"

step "rm"
s3q rm "s3://$B/dir/big.bin"
expect_fail "404|Not Found" s3api head-object --bucket "$B" --key dir/big.bin
s3q rm "s3://$B/tree" --recursive
[ -z "$(s3 ls "s3://$B/tree/" --recursive)" ] || fail "tree left after rm --recursive"

step "errors: wrong secret, missing key, missing bucket"
expect_fail "SignatureDoesNotMatch" env AWS_SECRET_ACCESS_KEY=wrong-secret aws --endpoint-url "$KINTSUGI_ENDPOINT" s3 ls "s3://$B/"
expect_fail "NoSuchKey" s3api get-object --bucket "$B" --key no/such/key "$WORK/missing.out"
expect_fail "NoSuchBucket" s3 ls "s3://$B-missing/"

step "remove the bucket"
s3 rb "s3://$B" --force >/dev/null
step "passed"
