package sigv4_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// A handler authenticates each request, then streams the verified payload;
// any failed check, up front or at the end of the body, is an *Error that
// carries the S3 code and status to answer with.
func ExampleVerifier_Verify() {
	v := &sigv4.Verifier{
		Creds:   sigv4.StaticCredentials{"AKIAEXAMPLE": "secret"},
		Region:  "us-east-1",
		MaxSkew: 5 * time.Minute,
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body) // store it instead
		}
		var e *sigv4.Error
		if errors.As(err, &e) {
			http.Error(w, e.Code, e.Status)
			return
		}
	})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("PUT", "/bucket/key", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output: 403 AccessDenied
}
