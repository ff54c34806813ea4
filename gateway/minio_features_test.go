package gateway

import (
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/cors"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// TestMinioTaggingAndCors runs minio-go's tagging and CORS calls.
func TestMinioTaggingAndCors(t *testing.T) {
	h := newHarness(t, false, nil)
	u, err := url.Parse(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4("AKIDEXAMPLE", "secretsecretsecret", ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		Transport:    h.srv.Client().Transport,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(bg, "mtags", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = mc.PutObject(bg, "mtags", "o", strings.NewReader("x"), 1, minio.PutObjectOptions{
		UserTags: map[string]string{"a": "1 2", "b": "x+y"}, CacheControl: "no-cache", ContentLanguage: "en",
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mc.GetObjectTagging(bg, "mtags", "o", minio.GetObjectTaggingOptions{})
	if err != nil || !maps.Equal(got.ToMap(), map[string]string{"a": "1 2", "b": "x+y"}) {
		t.Fatalf("GetObjectTagging: %v, %v", got, err)
	}
	st, err := mc.StatObject(bg, "mtags", "o", minio.StatObjectOptions{})
	if err != nil || st.UserTagCount != 2 || st.Metadata.Get("Cache-Control") != "no-cache" || st.Metadata.Get("Content-Language") != "en" {
		t.Fatalf("StatObject: %+v, %v", st, err)
	}
	ot, _ := tags.NewTags(map[string]string{"c": "3"}, true)
	if err := mc.PutObjectTagging(bg, "mtags", "o", ot, minio.PutObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := mc.GetObjectTagging(bg, "mtags", "o", minio.GetObjectTaggingOptions{}); err != nil || got.String() != "c=3" {
		t.Fatalf("after PutObjectTagging: %v, %v", got, err)
	}
	if err := mc.RemoveObjectTagging(bg, "mtags", "o", minio.RemoveObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := mc.GetObjectTagging(bg, "mtags", "o", minio.GetObjectTaggingOptions{}); err != nil || got.Count() != 0 {
		t.Fatalf("after RemoveObjectTagging: %v, %v", got, err)
	}

	bt, _ := tags.NewTags(map[string]string{"env": "prod"}, false)
	if err := mc.SetBucketTagging(bg, "mtags", bt); err != nil {
		t.Fatal(err)
	}
	if got, err := mc.GetBucketTagging(bg, "mtags"); err != nil || got.String() != "env=prod" {
		t.Fatalf("GetBucketTagging: %v, %v", got, err)
	}
	if err := mc.RemoveBucketTagging(bg, "mtags"); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.GetBucketTagging(bg, "mtags"); minio.ToErrorResponse(err).Code != "NoSuchTagSet" {
		t.Fatalf("GetBucketTagging after removal: %v", err)
	}

	cfg := cors.NewConfig([]cors.Rule{{AllowedOrigin: []string{"https://*.example.com"}, AllowedMethod: []string{"GET", "PUT"},
		AllowedHeader: []string{"*"}, ExposeHeader: []string{"ETag"}, MaxAgeSeconds: 300}})
	if err := mc.SetBucketCors(bg, "mtags", cfg); err != nil {
		t.Fatal(err)
	}
	back, err := mc.GetBucketCors(bg, "mtags")
	if err != nil || len(back.CORSRules) != 1 || back.CORSRules[0].MaxAgeSeconds != 300 || back.CORSRules[0].AllowedOrigin[0] != "https://*.example.com" {
		t.Fatalf("GetBucketCors: %+v, %v", back, err)
	}
	// minio-go removes a configuration by setting none.
	if err := mc.SetBucketCors(bg, "mtags", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.GetBucketCors(bg, "mtags"); err != nil && minio.ToErrorResponse(err).Code != "NoSuchCORSConfiguration" {
		t.Fatalf("GetBucketCors after removal: %v", err)
	}
	if info, _ := h.fake.HeadBucket(bg, "mtags"); info.Config.CORS != "" {
		t.Fatalf("configuration after removal: %s", info.Config.CORS)
	}
}
