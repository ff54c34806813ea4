package throttle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestNilMeansUnlimited(t *testing.T) {
	if New(0) != nil || New(-5) != nil {
		t.Fatal("rate <= 0 must mean no throttle")
	}
	var th *T
	if err := th.Wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader([]byte("abc"))
	if th.Reader(context.Background(), r) != r {
		t.Fatal("nil throttle must return the reader unchanged")
	}
}

func TestRateIsHonoured(t *testing.T) {
	const rate = 4 << 20 // 4 MiB/s
	th := New(rate)
	src := bytes.NewReader(make([]byte, 3<<20))
	start := time.Now()
	n, err := io.Copy(io.Discard, th.Reader(context.Background(), src))
	if err != nil || n != 3<<20 {
		t.Fatalf("copied %d, %v", n, err)
	}
	// 3 MiB at 4 MiB/s with a 1 MiB burst takes at least 0.5 s.
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("3 MiB at 4 MiB/s took only %v", el)
	}
}

func TestWaitLargerThanBurstAndCancel(t *testing.T) {
	th := New(1 << 20)
	if err := th.Wait(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := th.Wait(ctx, 10<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}
