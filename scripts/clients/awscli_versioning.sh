#!/usr/bin/env bash
# A versioning session with the aws cli against a Kintsugi gateway:
# enable versioning, overwrite and delete a key, list its versions, read an
# old version, restore the deleted object by deleting its delete marker,
# delete a version for good, suspend versioning, and set, read and delete a
# lifecycle configuration. See common.sh for the environment.
source "$(dirname "$0")/common.sh"

export AWS_ACCESS_KEY_ID=$KINTSUGI_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$KINTSUGI_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-credentials
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

s3() { aws --endpoint-url "$KINTSUGI_ENDPOINT" s3 "$@"; }
s3api() { aws --endpoint-url "$KINTSUGI_ENDPOINT" s3api "$@"; }
B=$BUCKET-v

step "$(aws --version 2>&1)"
step "make bucket, enable versioning"
s3api create-bucket --bucket "$B" >/dev/null
s3api put-bucket-versioning --bucket "$B" --versioning-configuration Status=Enabled
st=$(s3api get-bucket-versioning --bucket "$B" --query Status --output text)
[ "$st" = Enabled ] || fail "versioning status $st, want Enabled"

step "write two versions"
echo "first version" >"$WORK/v1.txt"
echo "second version" >"$WORK/v2.txt"
v1=$(s3api put-object --bucket "$B" --key doc.txt --body "$WORK/v1.txt" --query VersionId --output text)
v2=$(s3api put-object --bucket "$B" --key doc.txt --body "$WORK/v2.txt" --query VersionId --output text)
[ -n "$v1" ] && [ "$v1" != None ] && [ "$v1" != null ] && [ "$v1" != "$v2" ] || fail "version ids $v1 $v2"

step "list-object-versions"
n=$(s3api list-object-versions --bucket "$B" --prefix doc.txt --query 'length(Versions)' --output text)
[ "$n" = 2 ] || fail "$n versions listed, want 2"
latest=$(s3api list-object-versions --bucket "$B" --query 'Versions[?IsLatest].VersionId' --output text)
[ "$latest" = "$v2" ] || fail "latest version $latest, want $v2"

step "read the old version"
s3api get-object --bucket "$B" --key doc.txt --version-id "$v1" "$WORK/got-v1.txt" >/dev/null
same_file "$WORK/v1.txt" "$WORK/got-v1.txt" "old version"

step "delete the object: a delete marker"
marker=$(s3api delete-object --bucket "$B" --key doc.txt --query VersionId --output text)
expect_fail "404|Not Found|NoSuchKey" s3api head-object --bucket "$B" --key doc.txt
m=$(s3api list-object-versions --bucket "$B" --query 'DeleteMarkers[0].VersionId' --output text)
[ "$m" = "$marker" ] || fail "delete marker listed as $m, want $marker"

step "restore the deleted object: delete its delete marker"
s3api delete-object --bucket "$B" --key doc.txt --version-id "$marker" >/dev/null
s3 cp "s3://$B/doc.txt" "$WORK/restored.txt" --only-show-errors
same_file "$WORK/v2.txt" "$WORK/restored.txt" "restored object"

step "delete a version for good"
s3api delete-object --bucket "$B" --key doc.txt --version-id "$v1" >/dev/null
expect_fail "NoSuchVersion|Not Found|404" s3api get-object --bucket "$B" --key doc.txt --version-id "$v1" "$WORK/gone.txt"

step "suspend versioning: the null version replaces itself"
s3api put-bucket-versioning --bucket "$B" --versioning-configuration Status=Suspended
s3api put-object --bucket "$B" --key doc.txt --body "$WORK/v1.txt" >/dev/null
s3api put-object --bucket "$B" --key doc.txt --body "$WORK/v1.txt" >/dev/null
ids=$(s3api list-object-versions --bucket "$B" --query 'Versions[].VersionId' --output text)
[ "$ids" = "null	$v2" ] || fail "versions after suspended writes: $ids, want null $v2"

step "lifecycle: put, get, refuse an invalid rule, delete"
cat >"$WORK/lifecycle.json" <<'JSON'
{"Rules": [{"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
  "Expiration": {"Days": 30},
  "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}},
 {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}]}
JSON
s3api put-bucket-lifecycle-configuration --bucket "$B" --lifecycle-configuration "file://$WORK/lifecycle.json"
ids=$(s3api get-bucket-lifecycle-configuration --bucket "$B" --query 'Rules[].ID' --output text)
[ "$ids" = "logs	uploads" ] || fail "lifecycle rules $ids"
echo '{"Rules": [{"ID": "bad", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}]}' >"$WORK/bad.json"
expect_fail "InvalidArgument" s3api put-bucket-lifecycle-configuration --bucket "$B" --lifecycle-configuration "file://$WORK/bad.json"
s3api delete-bucket-lifecycle --bucket "$B"
expect_fail "NoSuchLifecycleConfiguration" s3api get-bucket-lifecycle-configuration --bucket "$B"

step "remove every version, then the bucket"
for id in null "$v2"; do
	s3api delete-object --bucket "$B" --key doc.txt --version-id "$id" >/dev/null
done
s3api delete-bucket --bucket "$B"
step "passed"
