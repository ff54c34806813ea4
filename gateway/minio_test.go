package gateway

import (
	"bytes"
	"io"
	"net/url"
	"slices"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestMinioClient(t *testing.T) {
	// minio-go sends aws-chunked bodies with chunk signatures over HTTP and
	// plain unsigned bodies over HTTPS.
	for _, tls := range []bool{false, true} {
		h := newHarness(t, tls, nil)
		u, err := url.Parse(h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		mc, err := minio.New(u.Host, &minio.Options{
			Creds:           credentials.NewStaticV4("AKIDEXAMPLE", "secretsecretsecret", ""),
			Region:          "us-east-1",
			BucketLookup:    minio.BucketLookupPath,
			Transport:       h.srv.Client().Transport,
			MaxRetries:      1,
			Secure:          tls,
			TrailingHeaders: tls,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.MakeBucket(bg, "mcb", minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("MakeBucket: %v", err)
		}
		data := testPayload(150 << 10)
		info, err := mc.PutObject(bg, "mcb", "dir/obj 1", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
			ContentType:  "application/x-test",
			UserMetadata: map[string]string{"Owner": "me"},
		})
		if err != nil {
			t.Fatalf("PutObject (TLS %v): %v", tls, err)
		}
		if info.ETag != md5hex(data) {
			t.Errorf("PutObject ETag %q", info.ETag)
		}
		if got, _ := h.fake.data("mcb", "dir/obj 1"); got != string(data) {
			t.Fatalf("stored %d bytes, want %d", len(got), len(data))
		}
		if _, err := mc.PutObject(bg, "mcb", "empty", bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("PutObject empty: %v", err)
		}

		st, err := mc.StatObject(bg, "mcb", "dir/obj 1", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(data)) || st.ContentType != "application/x-test" || st.UserMetadata["Owner"] != "me" {
			t.Errorf("StatObject = %+v, %v", st, err)
		}
		_, err = mc.StatObject(bg, "mcb", "nope", minio.StatObjectOptions{})
		if resp := minio.ToErrorResponse(err); resp.Code != "NoSuchKey" {
			t.Errorf("StatObject missing: %v (%q)", err, resp.Code)
		}

		obj, err := mc.GetObject(bg, "mcb", "dir/obj 1", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("GetObject: %d bytes, %v", len(got), err)
		}
		var ro minio.GetObjectOptions
		if err := ro.SetRange(1000, 1999); err != nil {
			t.Fatal(err)
		}
		obj, err = mc.GetObject(bg, "mcb", "dir/obj 1", ro)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data[1000:2000]) {
			t.Errorf("range GetObject: %d bytes, %v", len(got), err)
		}

		var keys []string
		for o := range mc.ListObjects(bg, "mcb", minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			keys = append(keys, o.Key)
		}
		if !slices.Equal(keys, []string{"dir/obj 1", "empty"}) {
			t.Errorf("ListObjects = %q", keys)
		}
		keys = nil
		for o := range mc.ListObjects(bg, "mcb", minio.ListObjectsOptions{}) {
			keys = append(keys, o.Key)
		}
		if slices.Sort(keys); !slices.Equal(keys, []string{"dir/", "empty"}) {
			t.Errorf("ListObjects non-recursive = %q", keys)
		}

		if err := mc.RemoveObject(bg, "mcb", "dir/obj 1", minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		toRemove := make(chan minio.ObjectInfo, 1)
		toRemove <- minio.ObjectInfo{Key: "empty"}
		close(toRemove)
		for r := range mc.RemoveObjects(bg, "mcb", toRemove, minio.RemoveObjectsOptions{}) {
			t.Errorf("RemoveObjects: %v", r.Err)
		}
		if err := mc.RemoveBucket(bg, "mcb"); err != nil {
			t.Errorf("RemoveBucket: %v", err)
		}
		if ok, err := mc.BucketExists(bg, "mcb"); ok || err != nil {
			t.Errorf("BucketExists after remove = %v, %v", ok, err)
		}
	}
}
