package codec

import "sync"

// Cache hands out one shared Codec per (data, parity, block size). A Codec
// is safe for concurrent use and building one costs a Reed-Solomon matrix,
// so servers that meet many objects' parameters keep one of each. The zero
// value is ready to use; a Cache must not be copied after first use.
type Cache struct {
	mu sync.Mutex
	m  map[[3]int]*Codec
}

// Get returns the shared Codec for the parameters, building it on first
// use. Errors are New's.
func (c *Cache) Get(data, parity, blockSize int) (*Codec, error) {
	k := [3]int{data, parity, blockSize}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cd, ok := c.m[k]; ok {
		return cd, nil
	}
	cd, err := New(data, parity, WithBlockSize(blockSize))
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = make(map[[3]int]*Codec)
	}
	c.m[k] = cd
	return cd, nil
}
