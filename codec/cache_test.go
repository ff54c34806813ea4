package codec

import (
	"errors"
	"testing"
)

func TestCache(t *testing.T) {
	var c Cache
	a, err := c.Get(4, 2, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get(4, 2, 64<<10)
	if a != b {
		t.Fatal("same parameters gave two codecs")
	}
	other, _ := c.Get(4, 2, 128<<10)
	if other == a || other.BlockSize() != 128<<10 || a.Data() != 4 || a.Parity() != 2 {
		t.Fatal("different parameters must give a codec of their own")
	}
	if _, err := c.Get(0, 2, 64<<10); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid parameters: %v, want ErrInvalid", err)
	}
}
