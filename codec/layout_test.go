package codec

import (
	"errors"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	const B = 4096 // d=4: stripe 16384 bytes, full frame 4128 bytes
	tests := []struct {
		size                   int64
		stripes                int
		lastStripeLen, lastLen int // StripeLen and BlockLen of the last stripe
		lastFrame, shardSize   int64
	}{
		{size: 0, stripes: 0, lastStripeLen: 0, lastLen: 0, lastFrame: 0, shardSize: 0},
		{size: 1, stripes: 1, lastStripeLen: 1, lastLen: 1, lastFrame: 0, shardSize: 33},
		{size: B - 1, stripes: 1, lastStripeLen: B - 1, lastLen: 1024, lastFrame: 0, shardSize: 1056},
		{size: B, stripes: 1, lastStripeLen: B, lastLen: 1024, lastFrame: 0, shardSize: 1056},
		{size: B + 1, stripes: 1, lastStripeLen: B + 1, lastLen: 1025, lastFrame: 0, shardSize: 1057},
		{size: 4*B - 1, stripes: 1, lastStripeLen: 4*B - 1, lastLen: B, lastFrame: 0, shardSize: 4128},
		{size: 4 * B, stripes: 1, lastStripeLen: 4 * B, lastLen: B, lastFrame: 0, shardSize: 4128},
		{size: 4*B + 1, stripes: 2, lastStripeLen: 1, lastLen: 1, lastFrame: 4128, shardSize: 4161},
		{size: 3*4*B + 5, stripes: 4, lastStripeLen: 5, lastLen: 2, lastFrame: 12384, shardSize: 12418},
		{size: 8 * 4 * B, stripes: 8, lastStripeLen: 4 * B, lastLen: B, lastFrame: 7 * 4128, shardSize: 8 * 4128},
	}
	for _, tt := range tests {
		l := Layout{Data: 4, Parity: 2, BlockSize: B, Size: tt.size}
		if err := l.Validate(); err != nil {
			t.Fatalf("size %d: Validate: %v", tt.size, err)
		}
		if got := l.Shards(); got != 6 {
			t.Errorf("size %d: Shards = %d, want 6", tt.size, got)
		}
		if got := l.Stripes(); got != tt.stripes {
			t.Errorf("size %d: Stripes = %d, want %d", tt.size, got, tt.stripes)
		}
		last := tt.stripes - 1
		if got := l.StripeLen(last); got != tt.lastStripeLen {
			t.Errorf("size %d: StripeLen(%d) = %d, want %d", tt.size, last, got, tt.lastStripeLen)
		}
		if got := l.BlockLen(last); got != tt.lastLen {
			t.Errorf("size %d: BlockLen(%d) = %d, want %d", tt.size, last, got, tt.lastLen)
		}
		if last > 0 {
			if got := l.FrameOffset(last); got != tt.lastFrame {
				t.Errorf("size %d: FrameOffset(%d) = %d, want %d", tt.size, last, got, tt.lastFrame)
			}
		}
		if got := l.ShardSize(); got != tt.shardSize {
			t.Errorf("size %d: ShardSize = %d, want %d", tt.size, got, tt.shardSize)
		}
		if got := l.FrameOffset(tt.stripes); got != tt.shardSize {
			t.Errorf("size %d: FrameOffset(Stripes()) = %d, want ShardSize %d", tt.size, got, tt.shardSize)
		}
		// Every stripe but the last is full; the stripe lengths add up to Size.
		var sum int64
		for s := range tt.stripes {
			if s < last && (l.StripeLen(s) != 4*B || l.BlockLen(s) != B || l.FrameOffset(s) != int64(s)*4128) {
				t.Errorf("size %d: stripe %d: StripeLen %d BlockLen %d FrameOffset %d, want full", tt.size, s, l.StripeLen(s), l.BlockLen(s), l.FrameOffset(s))
			}
			sum += int64(l.StripeLen(s))
		}
		if sum != tt.size {
			t.Errorf("size %d: stripe lengths sum to %d", tt.size, sum)
		}
		for _, s := range []int{-1, tt.stripes} {
			if l.StripeLen(s) != 0 || l.BlockLen(s) != 0 {
				t.Errorf("size %d: stripe %d out of range: StripeLen %d BlockLen %d, want 0", tt.size, s, l.StripeLen(s), l.BlockLen(s))
			}
		}
	}
}

func TestLayoutValidate(t *testing.T) {
	ok := Layout{Data: 4, Parity: 2, BlockSize: DefaultBlockSize, Size: 10}
	tests := []struct {
		name  string
		l     Layout
		field string // "" = valid
	}{
		{"default", ok, ""},
		{"min", Layout{Data: MinData, Parity: MinParity, BlockSize: MinBlockSize}, ""},
		{"max", Layout{Data: MaxData, Parity: MaxParity, BlockSize: MaxBlockSize, Size: 1 << 50}, ""},
		{"data 0", Layout{Data: 0, Parity: 2, BlockSize: MinBlockSize}, "Data"},
		{"data 17", Layout{Data: 17, Parity: 2, BlockSize: MinBlockSize}, "Data"},
		{"parity -1", Layout{Data: 4, Parity: -1, BlockSize: MinBlockSize}, "Parity"},
		{"parity 9", Layout{Data: 4, Parity: 9, BlockSize: MinBlockSize}, "Parity"},
		{"block small", Layout{Data: 4, Parity: 2, BlockSize: MinBlockSize - 1}, "BlockSize"},
		{"block big", Layout{Data: 4, Parity: 2, BlockSize: MaxBlockSize + 1}, "BlockSize"},
		{"size", Layout{Data: 4, Parity: 2, BlockSize: MinBlockSize, Size: -1}, "Size"},
	}
	for _, tt := range tests {
		err := tt.l.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: Validate = %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field+" ") {
			t.Errorf("%s: Validate = %v, want ErrInvalid naming %s", tt.name, err, tt.field)
		}
	}
}

func TestSpan(t *testing.T) {
	l := Layout{Data: 4, Parity: 2, BlockSize: 4096, Size: 3*16384 + 5}
	tests := []struct {
		off, length int64
		want        Span
	}{
		{0, 1, Span{0, 0, 0, 4128}},
		{16383, 1, Span{0, 0, 0, 4128}},
		{16383, 2, Span{0, 1, 0, 8256}},
		{16384, 16384, Span{1, 1, 4128, 4128}},
		{16384, 16385, Span{1, 2, 4128, 8256}},
		{49156, 1, Span{3, 3, 12384, 34}},
		{49152, 5, Span{3, 3, 12384, 34}},
		{0, 49157, Span{0, 3, 0, 12418}},
		{20000, 29157, Span{1, 3, 4128, 8290}},
	}
	for _, tt := range tests {
		if got := l.Span(tt.off, tt.length); got != tt.want {
			t.Errorf("Span(%d, %d) = %+v, want %+v", tt.off, tt.length, got, tt.want)
		}
	}
}
