package clock

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    time.Duration
		wantErr string
	}{
		{env: "", want: 0},
		{env: "0", want: 0},
		{env: "-10s", want: -10 * time.Second},
		{env: "7s", want: 7 * time.Second},
		{env: "+10s", want: 10 * time.Second},
		{env: "1m30s", want: 90 * time.Second},
		{env: "-250ms", want: -250 * time.Millisecond},
		{env: "10", wantErr: `KINTSUGI_CLOCK_OFFSET="10": want a duration`},
		{env: "ten seconds", wantErr: `KINTSUGI_CLOCK_OFFSET="ten seconds"`},
		{env: " 5s", wantErr: "want a duration"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			now, err := FromEnv(func(k string) string {
				if k != EnvOffset {
					t.Errorf("read %s", k)
				}
				return tc.env
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromEnv(%q): err %v, want one containing %q", tc.env, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv(%q): %v", tc.env, err)
			}
			// The offset is checked against the wall clock read around
			// the shifted reading.
			before := time.Now()
			got := now()
			after := time.Now()
			if lo, hi := before.Add(tc.want).Round(0), after.Add(tc.want).Round(0); got.Round(0).Before(lo) || got.Round(0).After(hi) {
				t.Errorf("FromEnv(%q)() = %v, want within [%v, %v]", tc.env, got, lo, hi)
			}
			if d := now().Sub(got); d < 0 || d > time.Second {
				t.Errorf("FromEnv(%q): two readings %v apart", tc.env, d)
			}
		})
	}
}

func TestManual(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	m := NewManual(start)
	if got := m.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	m.Advance(1500 * time.Millisecond)
	m.Advance(time.Minute)
	if got, want := m.Now(), start.Add(time.Minute+1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after Advance: %v, want %v", got, want)
	}
}

func TestManualAfter(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	m := NewManual(start)
	select {
	case got := <-m.After(0):
		if !got.Equal(start) {
			t.Fatalf("After(0) fired with %v, want %v", got, start)
		}
	default:
		t.Fatal("After(0) did not fire at once")
	}
	c := m.After(time.Second)
	waited := make(chan struct{})
	go func() { m.BlockUntil(2); close(waited) }()
	m.After(time.Hour)
	<-waited
	m.Advance(999 * time.Millisecond)
	select {
	case <-c:
		t.Fatal("After(1s) fired 999ms on")
	default:
	}
	m.Advance(time.Millisecond)
	if got, want := <-c, start.Add(time.Second); !got.Equal(want) {
		t.Fatalf("After(1s) fired with %v, want %v", got, want)
	}
	if n := m.Waiters(); n != 1 {
		t.Fatalf("%d waiters after one fired, want the hour's", n)
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, nil, time.Millisecond, func() {
			if calls++; calls == 3 {
				cancel()
			}
		})
	}()
	<-done
	if calls != 3 {
		t.Fatalf("f called %d times, want 3: Every must stop once ctx is done", calls)
	}
}

func TestEveryManual(t *testing.T) {
	m := NewManual(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan time.Time)
	done := make(chan struct{})
	go func() { defer close(done); Every(ctx, m.After, time.Minute, func() { calls <- m.Now() }) }()
	for i := 1; i <= 3; i++ {
		m.BlockUntil(1)
		m.Advance(59 * time.Second)
		select {
		case <-calls:
			t.Fatalf("call %d before its minute", i)
		default:
		}
		m.Advance(time.Second)
		if got, want := <-calls, time.Date(2025, 3, 1, 12, i, 0, 0, time.UTC); !got.Equal(want) {
			t.Fatalf("call %d at %v, want %v", i, got, want)
		}
	}
	cancel()
	<-done
}
