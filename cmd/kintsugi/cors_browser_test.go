package main

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/chromedp/chromedp"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// corsPage uploads with a presigned PUT URL and reads the object back with
// a presigned GET URL, from its own origin, and writes what happened into
// #out: "ok:<body>:<ETag>" or "error:<reason>".
var corsPage = template.Must(template.New("page").Parse(`<!doctype html>
<title>upload</title><pre id="out"></pre>
<script>
(async () => {
  const out = document.getElementById("out");
  try {
    const put = await fetch({{.Put}}, {method: "PUT", body: {{.Body}}, headers: {"Content-Type": "text/plain"}});
    if (!put.ok) throw new Error("PUT answered " + put.status);
    const etag = put.headers.get("ETag");
    const get = await fetch({{.Get}});
    if (!get.ok) throw new Error("GET answered " + get.status);
    out.textContent = "ok:" + (await get.text()) + ":" + etag;
  } catch (e) {
    out.textContent = "error:" + e;
  }
})();
</script>`))

// TestCORSInBrowser has headless Chromium upload to a multi-process
// cluster with a presigned URL from a page on another origin (a second
// 127.0.0.1 port), and read the object back. Without a CORS rule the
// browser must refuse (the preflight is answered 403) and nothing is
// stored; with a rule for the page's origin the upload and the read work,
// and the ETag is readable because the rule exposes it.
func TestCORSInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser; run without -short")
	}
	browser := requireBrowser(t, "TestCORSInBrowser")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := proctest.StartCluster(t, testBin, proctest.Options{})
	cl := s3Client(c, 0)
	const bucket = "browser-uploads"
	mustCreateBucket(t, ctx, cl, bucket)

	// The page's server: another origin than the gateway's.
	var page struct{ Put, Get, Body string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = corsPage.Execute(w, page)
	}))
	defer srv.Close()
	origin := srv.URL

	bctx := headlessBrowser(t, ctx, browser)

	presign := s3.NewPresignClient(cl, func(o *s3.PresignOptions) { o.Expires = 10 * time.Minute })
	upload := func(key string) string {
		t.Helper()
		put, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		get, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		page.Put, page.Get, page.Body = put.URL, get.URL, "hello from "+key
		if err := chromedp.Do(bctx, chromedp.Navigate(origin+"/"+key), chromedp.WaitReady("#out")); err != nil {
			t.Fatalf("page for %s: %v", key, err)
		}
		out, err := chromedp.Run(bctx, chromedp.Poll[string](`document.getElementById("out").textContent`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("page for %s: %v", key, err)
		}
		return out
	}

	// No CORS configuration: the preflight fails and the PUT never leaves
	// the browser.
	if out := upload("refused"); !strings.HasPrefix(out, "error:") {
		t.Fatalf("upload without a CORS rule: %q, want an error", out)
	}
	if _, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("refused")}); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("object after the refused upload: %v", err)
	}

	_, err := cl.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: &types.CORSConfiguration{
		CORSRules: []types.CORSRule{{
			AllowedOrigins: []string{origin},
			AllowedMethods: []string{"PUT", "GET"},
			AllowedHeaders: []string{"content-type"},
			ExposeHeaders:  []string{"ETag"},
			MaxAgeSeconds:  aws.Int32(1),
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out := upload("allowed")
	if !strings.HasPrefix(out, "ok:hello from allowed:\"") {
		t.Fatalf("upload with a CORS rule: %q", out)
	}
	body, err := getBytes(ctx, cl, bucket, "allowed")
	if err != nil || string(body) != "hello from allowed" {
		t.Fatalf("object uploaded by the browser: %q, %v", body, err)
	}
	head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("allowed")})
	if err != nil || !strings.HasSuffix(out, aws.ToString(head.ETag)) || aws.ToString(head.ContentType) != "text/plain" {
		t.Fatalf("page saw %q; HEAD %+v, %v", out, head, err)
	}
	t.Logf("page on %s uploaded and read back through CORS: %s", origin, out)
}
