// Package lifecycle parses, validates and evaluates S3 bucket lifecycle
// configurations: which rules apply to a key and when a version expires.
// The gateway validates a configuration with it before storing it in the
// bucket record; the scrubber's pass evaluates the stored one against
// every key it walks and expires what is due through the write protocol.
//
// It owns the rules' meaning only. It must never do I/O or read a clock:
// callers pass the time and the length of a "day" (shortened in tests).
package lifecycle

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// Configuration is a bucket's lifecycle configuration, as S3's XML has it.
type Configuration struct {
	XMLName xml.Name `xml:"LifecycleConfiguration"`
	Rules   []Rule   `xml:"Rule"`
}

// Rule is one lifecycle rule.
type Rule struct {
	ID     string  `xml:"ID,omitempty"`
	Status string  `xml:"Status"`
	Filter *Filter `xml:"Filter,omitempty"`
	// Prefix is the filter of rules written before Filter existed.
	Prefix                         *string                `xml:"Prefix,omitempty"`
	Expiration                     *Expiration            `xml:"Expiration,omitempty"`
	NoncurrentVersionExpiration    *NoncurrentExpiration  `xml:"NoncurrentVersionExpiration,omitempty"`
	AbortIncompleteMultipartUpload *AbortIncompleteUpload `xml:"AbortIncompleteMultipartUpload,omitempty"`
	// Transitions have no meaning in a store with one storage class.
	Transitions           []xml.Name `xml:"Transition,omitempty"`
	NoncurrentTransitions []xml.Name `xml:"NoncurrentVersionTransition,omitempty"`
}

// Filter selects the keys a rule applies to: by prefix, by one tag, or by
// all of And's conditions.
type Filter struct {
	Prefix                *string `xml:"Prefix,omitempty"`
	Tag                   *Tag    `xml:"Tag,omitempty"`
	And                   *And    `xml:"And,omitempty"`
	ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan,omitempty"`
}

// And is a conjunction of a prefix and tags.
type And struct {
	Prefix                *string `xml:"Prefix,omitempty"`
	Tags                  []Tag   `xml:"Tag"`
	ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan,omitempty"`
}

// Tag is an object tag a filter requires.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// Expiration expires current versions after Days, at Date, or (with
// ExpiredObjectDeleteMarker) removes delete markers left alone.
type Expiration struct {
	Days                      *int    `xml:"Days,omitempty"`
	Date                      *string `xml:"Date,omitempty"`
	ExpiredObjectDeleteMarker *bool   `xml:"ExpiredObjectDeleteMarker,omitempty"`
}

// NoncurrentExpiration deletes noncurrent versions NoncurrentDays after
// they became noncurrent, keeping the NewerNoncurrentVersions newest.
type NoncurrentExpiration struct {
	NoncurrentDays          *int `xml:"NoncurrentDays,omitempty"`
	NewerNoncurrentVersions *int `xml:"NewerNoncurrentVersions,omitempty"`
}

// AbortIncompleteUpload aborts multipart uploads DaysAfterInitiation after
// they began.
type AbortIncompleteUpload struct {
	DaysAfterInitiation *int `xml:"DaysAfterInitiation,omitempty"`
}

// Error is a configuration S3 would refuse: Code is S3's error code
// (MalformedXML, InvalidArgument, InvalidRequest, NotImplemented).
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// MaxRules is S3's limit on rules per configuration.
const MaxRules = 1000

// Parse decodes and validates a configuration.
func Parse(doc []byte) (*Configuration, error) {
	var c Configuration
	if err := xml.Unmarshal(doc, &c); err != nil {
		return nil, errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks c as S3 does.
func (c *Configuration) Validate() error {
	if len(c.Rules) == 0 || len(c.Rules) > MaxRules {
		return errorf("MalformedXML", "A lifecycle configuration has 1 to %d rules.", MaxRules)
	}
	ids := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if len(r.ID) > 255 {
			return errorf("InvalidArgument", "ID length should not exceed allowed limit of 255")
		}
		if r.ID != "" {
			if ids[r.ID] {
				return errorf("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")
			}
			ids[r.ID] = true
		}
		if err := r.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rule) validate() error {
	if r.Status != "Enabled" && r.Status != "Disabled" {
		return errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	if r.Filter != nil && r.Prefix != nil {
		return errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	if len(r.Transitions) > 0 || len(r.NoncurrentTransitions) > 0 {
		return errorf("NotImplemented", "Kintsugi has one storage class: transitions are not implemented.")
	}
	if f := r.Filter; f != nil {
		n := 0
		for _, set := range []bool{f.Prefix != nil, f.Tag != nil, f.And != nil, f.ObjectSizeGreaterThan != nil, f.ObjectSizeLessThan != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			return errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		}
		if f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil || f.And != nil && (f.And.ObjectSizeGreaterThan != nil || f.And.ObjectSizeLessThan != nil) {
			return errorf("NotImplemented", "Kintsugi does not implement object size filters.")
		}
		if f.And != nil && len(f.And.Tags) == 0 && f.And.Prefix == nil {
			return errorf("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
		}
	}
	if r.Expiration == nil && r.NoncurrentVersionExpiration == nil && r.AbortIncompleteMultipartUpload == nil {
		return errorf("InvalidRequest", "At least one action needs to be specified in a rule")
	}
	tagged := len(r.tags()) > 0
	if e := r.Expiration; e != nil {
		n := 0
		for _, set := range []bool{e.Days != nil, e.Date != nil, e.ExpiredObjectDeleteMarker != nil} {
			if set {
				n++
			}
		}
		switch {
		case n != 1:
			return errorf("MalformedXML", "Expiration has exactly one of Days, Date and ExpiredObjectDeleteMarker.")
		case e.Days != nil && *e.Days <= 0:
			return errorf("InvalidArgument", "'Days' for Expiration action must be a positive integer")
		case e.ExpiredObjectDeleteMarker != nil && tagged:
			return errorf("InvalidRequest", "ExpiredObjectDeleteMarker cannot be specified with tag filter")
		}
		if e.Date != nil {
			if _, err := e.date(); err != nil {
				return err
			}
		}
	}
	if ne := r.NoncurrentVersionExpiration; ne != nil {
		switch {
		case ne.NoncurrentDays == nil || *ne.NoncurrentDays <= 0:
			return errorf("InvalidArgument", "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer")
		case ne.NewerNoncurrentVersions != nil && (*ne.NewerNoncurrentVersions < 1 || *ne.NewerNoncurrentVersions > 100):
			return errorf("InvalidArgument", "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer up to 100")
		}
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil {
		switch {
		case a.DaysAfterInitiation == nil || *a.DaysAfterInitiation <= 0:
			return errorf("InvalidArgument", "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer")
		case tagged:
			return errorf("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with tags")
		}
	}
	return nil
}

// date parses Date: ISO 8601, at midnight UTC, as S3 requires.
func (e *Expiration) date() (time.Time, error) {
	s := strings.TrimSpace(*e.Date)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05.000Z", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			if !t.Equal(t.Truncate(24 * time.Hour)) {
				return time.Time{}, errorf("InvalidArgument", "'Date' must be at midnight GMT")
			}
			return t, nil
		}
	}
	return time.Time{}, errorf("InvalidArgument", "'Date' must be in ISO 8601 format")
}

// prefix returns the key prefix the rule requires ("" for any).
func (r *Rule) prefix() string {
	switch {
	case r.Prefix != nil:
		return *r.Prefix
	case r.Filter == nil:
		return ""
	case r.Filter.Prefix != nil:
		return *r.Filter.Prefix
	case r.Filter.And != nil && r.Filter.And.Prefix != nil:
		return *r.Filter.And.Prefix
	}
	return ""
}

// tags returns the tags the rule requires.
func (r *Rule) tags() []Tag {
	switch {
	case r.Filter == nil:
		return nil
	case r.Filter.Tag != nil:
		return []Tag{*r.Filter.Tag}
	case r.Filter.And != nil:
		return r.Filter.And.Tags
	}
	return nil
}

// Applies reports whether the enabled rule r selects a key with these
// tags (nil: an object without tags).
func (r *Rule) Applies(key string, tags map[string]string) bool {
	if r.Status != "Enabled" || !strings.HasPrefix(key, r.prefix()) {
		return false
	}
	for _, t := range r.tags() {
		if v, ok := tags[t.Key]; !ok || v != t.Value {
			return false
		}
	}
	return true
}

// Object is what evaluating a key needs of one version.
type Object struct {
	Modified time.Time
	Deleted  bool
}

// CurrentExpired reports whether a rule of c expires the current version
// cur of key at now, a day lasting day. A delete marker is never expired
// this way (see MarkerExpired).
func (c *Configuration) CurrentExpired(key string, tags map[string]string, cur Object, now time.Time, day time.Duration) bool {
	if cur.Deleted {
		return false
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		e := r.Expiration
		if e == nil || !r.Applies(key, tags) {
			continue
		}
		if e.Days != nil && !now.Before(cur.Modified.Add(time.Duration(*e.Days)*day)) {
			return true
		}
		if e.Date != nil {
			if d, err := e.date(); err == nil && !now.Before(d) {
				return true
			}
		}
	}
	return false
}

// MarkerExpired reports whether a rule of c removes a delete marker of key
// that no noncurrent version lies under.
func (c *Configuration) MarkerExpired(key string) bool {
	for i := range c.Rules {
		r := &c.Rules[i]
		if e := r.Expiration; e != nil && e.ExpiredObjectDeleteMarker != nil && *e.ExpiredObjectDeleteMarker && r.Applies(key, nil) {
			return true
		}
	}
	return false
}

// NoncurrentExpired returns which of key's noncurrent versions expire at
// now. versions are the key's noncurrent versions, newest first, each
// with since, the time it became noncurrent (the Modified of the version
// above it). A version expires when some rule's NoncurrentDays have
// passed since and at least NewerNoncurrentVersions newer noncurrent
// versions exist. tags are the current version's (a noncurrent version's
// own tags, where recorded, would be as good).
func (c *Configuration) NoncurrentExpired(key string, tags map[string]string, since []time.Time, now time.Time, day time.Duration) []bool {
	out := make([]bool, len(since))
	for i := range c.Rules {
		r := &c.Rules[i]
		ne := r.NoncurrentVersionExpiration
		if ne == nil || ne.NoncurrentDays == nil || !r.Applies(key, tags) {
			continue
		}
		keep := 0
		if ne.NewerNoncurrentVersions != nil {
			keep = *ne.NewerNoncurrentVersions
		}
		for j, s := range since {
			if j >= keep && !now.Before(s.Add(time.Duration(*ne.NoncurrentDays)*day)) {
				out[j] = true
			}
		}
	}
	return out
}

// UploadExpired reports whether a rule of c aborts a multipart upload to
// key begun at initiated.
func (c *Configuration) UploadExpired(key string, initiated, now time.Time, day time.Duration) bool {
	for i := range c.Rules {
		r := &c.Rules[i]
		a := r.AbortIncompleteMultipartUpload
		if a == nil || a.DaysAfterInitiation == nil || !r.Applies(key, nil) {
			continue
		}
		if !now.Before(initiated.Add(time.Duration(*a.DaysAfterInitiation) * day)) {
			return true
		}
	}
	return false
}
