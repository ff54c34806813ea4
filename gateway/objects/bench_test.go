package objects

import (
	"bytes"
	"context"
	"io"
	"testing"
)

func BenchmarkPut4x2x1M(b *testing.B) {
	c := newCluster(b, 6, 4, 2)
	data := payload(1<<20, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet4x2x1M(b *testing.B) {
	c := newCluster(b, 6, 4, 2)
	data := payload(1<<20, 1)
	c.put("k", data)
	obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := obj.WriteRange(context.Background(), io.Discard, 0, int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
