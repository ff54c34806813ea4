package lifecycle

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func rules(body string) string {
	return `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + body + `</LifecycleConfiguration>`
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name, doc, code string
	}{
		{"ok days", rules(`<Rule><ID>a</ID><Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>3</Days></Expiration></Rule>`), ""},
		{"ok legacy prefix", rules(`<Rule><Status>Enabled</Status><Prefix></Prefix><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>`), ""},
		{"ok date", rules(`<Rule><Status>Disabled</Status><Filter/><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>`), ""},
		{"ok tags", rules(`<Rule><Status>Enabled</Status><Filter><And><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter><Expiration><Days>1</Days></Expiration></Rule>`), ""},
		{"ok abort", rules(`<Rule><Status>Enabled</Status><Filter/><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`), ""},
		{"not xml", `<LifecycleConfiguration><Rule>`, "MalformedXML"},
		{"no rules", rules(``), "MalformedXML"},
		{"bad status", rules(`<Rule><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>`), "MalformedXML"},
		{"no action", rules(`<Rule><Status>Enabled</Status><Filter/></Rule>`), "InvalidRequest"},
		{"zero days", rules(`<Rule><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>`), "InvalidArgument"},
		{"days and date", rules(`<Rule><Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>`), "MalformedXML"},
		{"date not midnight", rules(`<Rule><Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration></Rule>`), "InvalidArgument"},
		{"duplicate id", rules(`<Rule><ID>x</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>x</ID><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>`), "InvalidArgument"},
		{"filter and prefix", rules(`<Rule><Status>Enabled</Status><Prefix>a</Prefix><Filter><Prefix>a</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>`), "MalformedXML"},
		{"marker with tags", rules(`<Rule><Status>Enabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>`), "InvalidRequest"},
		{"abort with tags", rules(`<Rule><Status>Enabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`), "InvalidRequest"},
		{"newer versions 0", rules(`<Rule><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>0</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>`), "InvalidArgument"},
		{"transition", rules(`<Rule><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>`), "NotImplemented"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			var le *Error
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case c.code != "" && (!errors.As(err, &le) || le.Code != c.code):
				t.Fatalf("Parse: %v, want code %s", err, c.code)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	doc := rules(`<Rule><Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>2</Days></Expiration>` +
		`<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>` +
		`<Rule><Status>Enabled</Status><Filter><Tag><Key>tmp</Key><Value>yes</Value></Tag></Filter><Expiration><Days>1</Days></Expiration></Rule>` +
		`<Rule><Status>Enabled</Status><Filter><Prefix>m/</Prefix></Filter><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>` +
		`<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`)
	cfg, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		key  string
		tags map[string]string
		age  time.Duration
		want bool
	}{
		{"logs/a", nil, 1 * time.Second, false},
		{"logs/a", nil, 2 * time.Second, true},
		{"other", nil, 10 * time.Second, false},
		{"other", map[string]string{"tmp": "yes"}, 1 * time.Second, true},
		{"other", map[string]string{"tmp": "no"}, 10 * time.Second, false},
	} {
		if got := cfg.CurrentExpired(c.key, c.tags, Object{Modified: t0}, t0.Add(c.age), day); got != c.want {
			t.Errorf("CurrentExpired(%s, %v, age %v) = %v", c.key, c.tags, c.age, got)
		}
	}
	if cfg.CurrentExpired("logs/a", nil, Object{Modified: t0, Deleted: true}, t0.Add(time.Hour), day) {
		t.Error("a delete marker expired as a current version")
	}
	// Noncurrent: since times newest first; the newest noncurrent is kept.
	since := []time.Time{t0, t0, t0.Add(5 * time.Second)}
	if got := cfg.NoncurrentExpired("logs/a", nil, since, t0.Add(2*time.Second), day); !slices.Equal(got, []bool{false, true, false}) {
		t.Errorf("NoncurrentExpired = %v", got)
	}
	if !cfg.MarkerExpired("m/x") || cfg.MarkerExpired("logs/x") {
		t.Error("MarkerExpired")
	}
	if cfg.UploadExpired("m/x", t0, t0.Add(2*time.Second), day) || !cfg.UploadExpired("m/x", t0, t0.Add(3*time.Second), day) {
		t.Error("UploadExpired")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(rules(`<Rule><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`)))
	f.Add([]byte(rules(`<Rule><Status>Enabled</Status><Filter><And><Tag><Key>a</Key><Value>b</Value></Tag></And></Filter><Expiration><Date>2030-01-01</Date></Expiration></Rule>`)))
	f.Fuzz(func(t *testing.T, doc []byte) {
		cfg, err := Parse(doc)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed configuration fails validation: %v", err)
		}
		cfg.CurrentExpired("k", nil, Object{}, time.Now(), time.Second)
	})
}
