package storagenode

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestReadJSON(t *testing.T) {
	type body struct {
		A string `json:"a"`
		N int    `json:"n"`
	}
	for _, tc := range []struct {
		name, in string
		kind     kerr.Kind // 0: no error
		want     body
	}{
		{"object", `{"a":"x","n":2}`, 0, body{"x", 2}},
		{"trailing space", "{\"a\":\"x\"}\n ", 0, body{A: "x"}},
		{"trailing value", `{"a":"x"}{"a":"y"}`, kerr.Invalid, body{}},
		{"trailing garbage", `{"a":"x"} x`, kerr.Invalid, body{}},
		{"truncated", `{"a":"x"`, kerr.Invalid, body{}},
		{"wrong type", `{"n":"two"}`, kerr.Invalid, body{}},
		{"empty", ``, kerr.Invalid, body{}},
		{"too big", `{"a":"` + strings.Repeat("x", client.MaxSignedBody) + `"}`, kerr.TooLarge, body{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/x", strings.NewReader(tc.in))
			var got body
			err := readJSON(httptest.NewRecorder(), r, "test", &got)
			if tc.kind == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("readJSON = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if !kerr.Is(tc.kind, err) {
				t.Fatalf("readJSON error %v, want kind %v", err, tc.kind)
			}
		})
	}
}
