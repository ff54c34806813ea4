"""A session with boto3 against a Kintsugi gateway.

Small and large (multipart, managed transfer) uploads and downloads with
digests compared, listings, a tree uploaded and read back, range GETs,
server-side copies (CopyObject and managed multipart copy), checksums, the
low-level multipart calls and their errors, batch delete, the errors a
wrong secret and a missing key give, and versioning and lifecycle
configuration on a bucket of their own. Run by boto3.sh, which sets the
environment described in common.sh.
"""

import base64
import hashlib
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["KINTSUGI_ENDPOINT"]
ACCESS_KEY = os.environ["KINTSUGI_ACCESS_KEY"]
SECRET_KEY = os.environ["KINTSUGI_SECRET_KEY"]
BUCKET = os.environ["BUCKET"]
WORK = os.environ["WORK"]
BIG_FILE = os.environ["BIG_FILE"]
SMALL_FILE = os.environ["SMALL_FILE"]
MIB = 1 << 20
START = time.monotonic()


def step(msg):
    print(f"== boto3 [{int(time.monotonic() - START)}s]: {msg}", flush=True)


def fail(msg):
    print(f"FAIL boto3: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def client(secret=SECRET_KEY):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        verify=os.environ.get("KINTSUGI_CA_CERT") or None,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def read_slice(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def expect_error(codes, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code not in codes:
            fail(f"{fn.__name__}: error {code}, want one of {codes}: {e}")
        return
    fail(f"{fn.__name__}: succeeded, want one of {codes}")


def same(want, got, what):
    if want != got:
        fail(f"{what}: got {got!r}, want {want!r}")


def main():
    s3 = client()
    b = BUCKET
    big_size = os.path.getsize(BIG_FILE)
    transfer = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)

    step(f"boto3 {boto3.__version__}")
    step("make bucket")
    s3.create_bucket(Bucket=b)

    step("upload small (with a checksum) and big (multipart) objects")
    small = open(SMALL_FILE, "rb").read()
    s3.put_object(Bucket=b, Key="small.txt", Body=small, ChecksumAlgorithm="SHA256", ContentType="text/plain",
                  Metadata={"origin": "boto3"})
    head = s3.head_object(Bucket=b, Key="small.txt", ChecksumMode="ENABLED")
    same(base64.b64encode(hashlib.sha256(small).digest()).decode(), head.get("ChecksumSHA256"), "stored sha256")
    same({"origin": "boto3"}, head["Metadata"], "user metadata")
    s3.upload_file(BIG_FILE, b, "dir/big.bin", Config=transfer)
    head = s3.head_object(Bucket=b, Key="dir/big.bin")
    parts = -(-big_size // (8 * MIB))
    if not head["ETag"].endswith(f'-{parts}"') or head["ContentLength"] != big_size:
        fail(f"big object: ETag {head['ETag']}, {head['ContentLength']} bytes; want {parts} parts, {big_size} bytes")

    step("list")
    resp = s3.list_objects_v2(Bucket=b, Delimiter="/")
    same(["dir/"], [p["Prefix"] for p in resp.get("CommonPrefixes", [])], "common prefixes")
    same(["small.txt"], [o["Key"] for o in resp.get("Contents", [])], "keys")
    resp = s3.list_objects(Bucket=b, Prefix="dir/")
    same([("dir/big.bin", big_size)], [(o["Key"], o["Size"]) for o in resp.get("Contents", [])], "v1 listing")

    step("download (managed, in ranges) and compare")
    out = os.path.join(WORK, "big.out")
    s3.download_file(b, "dir/big.bin", out, Config=transfer)
    same(sha256_file(BIG_FILE), sha256_file(out), "big download sha256")
    os.remove(out)
    same(small, s3.get_object(Bucket=b, Key="small.txt")["Body"].read(), "small download")

    step("range GET")
    got = s3.get_object(Bucket=b, Key="dir/big.bin", Range="bytes=16777000-16787999")["Body"].read()
    same(read_slice(BIG_FILE, 16777000, 11000), got, "range GET")

    step("server-side copies")
    s3.copy({"Bucket": b, "Key": "dir/big.bin"}, b, "copy.bin", Config=transfer)
    same(big_size, s3.head_object(Bucket=b, Key="copy.bin")["ContentLength"], "managed copy size")
    got = s3.get_object(Bucket=b, Key="copy.bin", Range=f"bytes={big_size - 5000}-")["Body"].read()
    same(read_slice(BIG_FILE, big_size - 5000, 5000), got, "tail of the managed copy")
    s3.copy_object(Bucket=b, Key="small-copy.txt", CopySource={"Bucket": b, "Key": "small.txt"},
                   MetadataDirective="REPLACE", Metadata={"copied": "yes"}, ContentType="text/x-copy")
    head = s3.head_object(Bucket=b, Key="small-copy.txt")
    same(({"copied": "yes"}, "text/x-copy"), (head["Metadata"], head["ContentType"]), "REPLACE copy")

    step("upload a tree, list it in pages, read it back")
    tree = os.path.join(WORK, "tree")
    files = {}
    for i in range(25):
        rel = f"tree/d{i % 3}/file {i:02d}.txt"
        files[rel] = f"file {i} of the tree\n".encode() * (i + 1)
        s3.put_object(Bucket=b, Key=rel, Body=files[rel])
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="tree/", PaginationConfig={"PageSize": 7}):
        seen += [o["Key"] for o in page.get("Contents", [])]
    same(sorted(files), seen, "paged listing")
    for rel, data in files.items():
        path = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(b, rel, path)
        same(data, open(path, "rb").read(), rel)

    step("low-level multipart calls")
    up = s3.create_multipart_upload(Bucket=b, Key="manual", ChecksumAlgorithm="CRC32")
    uid = up["UploadId"]
    p1 = os.urandom(5 * MIB)
    e1 = s3.upload_part(Bucket=b, Key="manual", UploadId=uid, PartNumber=1, Body=p1, ChecksumAlgorithm="CRC32")["ETag"]
    e2 = s3.upload_part(Bucket=b, Key="manual", UploadId=uid, PartNumber=2, Body=b"tail", ChecksumAlgorithm="CRC32")["ETag"]
    same([1, 2], [p["PartNumber"] for p in s3.list_parts(Bucket=b, Key="manual", UploadId=uid)["Parts"]], "list_parts")
    same([uid], [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])], "list_multipart_uploads")
    expect_error(["InvalidPartOrder"], s3.complete_multipart_upload, Bucket=b, Key="manual", UploadId=uid,
                 MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    expect_error(["InvalidPart"], s3.complete_multipart_upload, Bucket=b, Key="manual", UploadId=uid,
                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e2}]})
    s3.complete_multipart_upload(Bucket=b, Key="manual", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    same(p1 + b"tail", s3.get_object(Bucket=b, Key="manual")["Body"].read(), "completed object")
    up = s3.create_multipart_upload(Bucket=b, Key="aborted")
    s3.upload_part(Bucket=b, Key="aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=b, Key="aborted", UploadId=up["UploadId"])
    same([], s3.list_multipart_uploads(Bucket=b).get("Uploads", []), "uploads after abort")
    expect_error(["NoSuchUpload"], s3.list_parts, Bucket=b, Key="aborted", UploadId=up["UploadId"])

    tags_cors_and_headers(s3, b)

    step("delete: batch and single")
    resp = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in files]})
    same(len(files), len(resp.get("Deleted", [])), "batch delete")
    same([], resp.get("Errors", []), "batch delete errors")
    s3.delete_object(Bucket=b, Key="dir/big.bin")
    expect_error(["404", "NoSuchKey"], s3.head_object, Bucket=b, Key="dir/big.bin")

    step("errors: wrong secret, missing key")
    expect_error(["SignatureDoesNotMatch"], client("wrong-secret").list_objects_v2, Bucket=b)
    expect_error(["NoSuchKey"], s3.get_object, Bucket=b, Key="no/such/key")
    expect_error(["NoSuchBucket"], s3.list_objects_v2, Bucket=b + "-missing")

    step("remove the bucket")
    for o in s3.list_objects_v2(Bucket=b).get("Contents", []):
        s3.delete_object(Bucket=b, Key=o["Key"])
    s3.delete_bucket(Bucket=b)
    versioning(s3, b + "-v")
    step("passed")


def tags_cors_and_headers(s3, b):
    step("object tagging: on PUT, replaced, counted, copied, limits")
    s3.put_object(Bucket=b, Key="tagged", Body=b"t", Tagging="team=blue%20sky&cost=a%2Bb")
    same([{"Key": "team", "Value": "blue sky"}, {"Key": "cost", "Value": "a+b"}],
         s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"], "tags from x-amz-tagging")
    s3.put_object_tagging(Bucket=b, Key="tagged", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    same([{"Key": "k", "Value": "v"}], s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"], "replaced tags")
    same(1, s3.get_object(Bucket=b, Key="tagged")["TagCount"], "x-amz-tagging-count")
    same(b"t", s3.get_object(Bucket=b, Key="tagged")["Body"].read(), "data after tagging")
    s3.copy_object(Bucket=b, Key="tagged-copy", CopySource={"Bucket": b, "Key": "tagged"},
                   TaggingDirective="REPLACE", Tagging="new=1")
    same([{"Key": "new", "Value": "1"}], s3.get_object_tagging(Bucket=b, Key="tagged-copy")["TagSet"], "REPLACE tagging")
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    expect_error(["BadRequest"], s3.put_object_tagging, Bucket=b, Key="tagged", Tagging={"TagSet": eleven})
    expect_error(["InvalidTag"], s3.put_object_tagging, Bucket=b, Key="tagged",
                 Tagging={"TagSet": [{"Key": "k" * 129, "Value": "v"}]})
    s3.delete_object_tagging(Bucket=b, Key="tagged")
    same([], s3.get_object_tagging(Bucket=b, Key="tagged")["TagSet"], "deleted tags")

    step("bucket tagging")
    expect_error(["NoSuchTagSet"], s3.get_bucket_tagging, Bucket=b)
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "env", "Value": "test"}]})
    same([{"Key": "env", "Value": "test"}], s3.get_bucket_tagging(Bucket=b)["TagSet"], "bucket tags")
    s3.delete_bucket_tagging(Bucket=b)
    expect_error(["NoSuchTagSet"], s3.get_bucket_tagging, Bucket=b)

    step("CORS configuration")
    expect_error(["NoSuchCORSConfiguration"], s3.get_bucket_cors, Bucket=b)
    rules = [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"],
              "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]
    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": rules})
    same(rules, s3.get_bucket_cors(Bucket=b)["CORSRules"], "CORS rules")
    expect_error(["InvalidRequest"], s3.put_bucket_cors, Bucket=b, CORSConfiguration={
        "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
    s3.delete_bucket_cors(Bucket=b)
    expect_error(["NoSuchCORSConfiguration"], s3.get_bucket_cors, Bucket=b)

    step("stored headers, URL-encoded listings, fetch-owner, empty token")
    s3.put_object(Bucket=b, Key="hdr/a b+c", Body=b"h", CacheControl="max-age=9", ContentDisposition="attachment",
                  ContentEncoding="identity", ContentLanguage="fr", Expires="Wed, 01 Jan 2031 00:00:00 GMT")
    head = s3.head_object(Bucket=b, Key="hdr/a b+c")
    # Expires is read from the raw header: botocore releases parse it
    # differently (a datetime, or ExpiresString in newer ones).
    same(["max-age=9", "attachment", "identity", "fr", "Wed, 01 Jan 2031 00:00:00 GMT"],
         [head.get("CacheControl"), head.get("ContentDisposition"), head.get("ContentEncoding"),
          head.get("ContentLanguage"), head["ResponseMetadata"]["HTTPHeaders"].get("expires")], "stored headers")
    # botocore asks for encoding-type=url and decodes; the raw answer must
    # carry %20 for the space so that decoding is unambiguous.
    raw = []
    s3.meta.events.register("after-call.s3.ListObjectsV2", lambda http_response, **kw: raw.append(http_response.content))
    listed = s3.list_objects_v2(Bucket=b, Prefix="hdr/", FetchOwner=True, ContinuationToken="")
    s3.meta.events.unregister("after-call.s3.ListObjectsV2")
    same(["hdr/a b+c"], [o["Key"] for o in listed["Contents"]], "decoded key")
    if b"<Key>hdr/a%20b%2Bc</Key>" not in raw[0]:
        fail(f"encoded listing: {raw[0]!r}")
    if not listed["Contents"][0].get("Owner", {}).get("ID"):
        fail(f"fetch-owner: {listed['Contents'][0]}")
    same("", listed.get("ContinuationToken"), "echoed empty continuation token")

    step("repeated CompleteMultipartUpload, bucket created again")
    up = s3.create_multipart_upload(Bucket=b, Key="twice")
    e1 = s3.upload_part(Bucket=b, Key="twice", UploadId=up["UploadId"], PartNumber=1, Body=b"once")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": e1}]}
    first = s3.complete_multipart_upload(Bucket=b, Key="twice", UploadId=up["UploadId"], MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=b, Key="twice", UploadId=up["UploadId"], MultipartUpload=parts)
    same(first["ETag"], again["ETag"], "repeated completion ETag")
    s3.create_bucket(Bucket=b)
    same(b"once", s3.get_object(Bucket=b, Key="twice")["Body"].read(), "object after re-creating its bucket")
    for k in ["tagged", "tagged-copy", "hdr/a b+c", "twice"]:
        s3.delete_object(Bucket=b, Key=k)


def versioning(s3, b):
    """Versioning and lifecycle on a bucket of their own."""
    step("versioning: enable, overwrite, list versions, read an old one")
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    same("Enabled", s3.get_bucket_versioning(Bucket=b).get("Status"), "versioning status")
    v1 = s3.put_object(Bucket=b, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="doc", Body=b"two")["VersionId"]
    listed = s3.list_object_versions(Bucket=b)["Versions"]
    same([v2, v1], [v["VersionId"] for v in listed], "listed versions")
    same([True, False], [v["IsLatest"] for v in listed], "IsLatest")
    same(b"one", s3.get_object(Bucket=b, Key="doc", VersionId=v1)["Body"].read(), "old version")

    step("versioning: delete marker, restore by deleting it")
    marker = s3.delete_object(Bucket=b, Key="doc")
    same(True, marker.get("DeleteMarker"), "DeleteMarker")
    expect_error(["NoSuchKey"], s3.get_object, Bucket=b, Key="doc")
    s3.delete_object(Bucket=b, Key="doc", VersionId=marker["VersionId"])
    same(b"two", s3.get_object(Bucket=b, Key="doc")["Body"].read(), "restored object")

    step("lifecycle: put, get, invalid, delete")
    rules = [{"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7},
              "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3}}]
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    same("tmp", got[0]["ID"], "lifecycle rule")
    same(3, got[0]["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"], "NewerNoncurrentVersions")
    bad = [{"ID": "bad", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}]
    expect_error(["InvalidArgument"], s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": bad})
    s3.delete_bucket_lifecycle(Bucket=b)
    expect_error(["NoSuchLifecycleConfiguration"], s3.get_bucket_lifecycle_configuration, Bucket=b)

    step("versioning: delete every version in a batch, then the bucket")
    vs = s3.list_object_versions(Bucket=b)
    objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in vs.get("Versions", []) + vs.get("DeleteMarkers", [])]
    resp = s3.delete_objects(Bucket=b, Delete={"Objects": objs})
    same([], resp.get("Errors", []), "batch delete of versions")
    same(len(objs), len(resp.get("Deleted", [])), "versions deleted")
    s3.delete_bucket(Bucket=b)


if __name__ == "__main__":
    main()
