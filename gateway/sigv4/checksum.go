package sigv4

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"hash/crc32"
	"hash/crc64"
)

// checksumNames are the x-amz-checksum-* headers and trailers understood,
// in the order they are checked.
var checksumNames = []string{
	"x-amz-checksum-crc32",
	"x-amz-checksum-crc32c",
	"x-amz-checksum-crc64nvme",
	"x-amz-checksum-sha1",
	"x-amz-checksum-sha256",
	"x-amz-checksum-sha512",
	"x-amz-checksum-md5",
}

// crc64NVME is the CRC-64/NVME table (polynomial 0xad93d23594c93659,
// reflected), which hash/crc64's reflected, inverted algorithm computes
// exactly as S3 does.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// newChecksum returns a fresh hash for the x-amz-checksum-* name. Sum
// yields the big-endian bytes whose base64 S3 sends.
func newChecksum(name string) (hash.Hash, bool) {
	switch name {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE(), true
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli)), true
	case "x-amz-checksum-crc64nvme":
		return crc64.New(crc64NVME), true
	case "x-amz-checksum-sha1":
		return sha1.New(), true
	case "x-amz-checksum-sha256":
		return sha256.New(), true
	case "x-amz-checksum-sha512":
		return sha512.New(), true
	case "x-amz-checksum-md5":
		return md5.New(), true
	}
	return nil, false
}
