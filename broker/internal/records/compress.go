package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Decompressor decompresses records sections into a buffer it reuses, so
// that steady-state decompression does not allocate. It is not safe for
// concurrent use; the zero value is ready to use.
type Decompressor struct {
	buf     []byte
	src     bytes.Reader
	gz      gzip.Reader
	lz      *lz4.Reader
	zs      *zstd.Decoder
	zsLimit int
}

// NewDecompressor returns a ready Decompressor.
func NewDecompressor() *Decompressor { return new(Decompressor) }

var decompressors = sync.Pool{New: func() any { return new(Decompressor) }}

func getDecompressor() *Decompressor { return decompressors.Get().(*Decompressor) }
func putDecompressor(d *Decompressor) {
	// Do not keep a rare huge buffer alive in the pool.
	if cap(d.buf) > maxPooledBuf {
		d.buf = nil
	}
	decompressors.Put(d)
}

const maxPooledBuf = 8 << 20

// xerialMagic starts the Java client's framed snappy stream: the magic,
// then version and minimum compatible version (4 bytes each), then blocks
// each prefixed by a 4-byte big endian length.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// Decompress decompresses src, compressed with codec, and returns the
// result, which aliases d's buffer and is valid until the next call. It
// rejects output larger than limit bytes with ErrInvalidRecord, undecodable input
// with ErrCorrupt and unknown codecs with ErrUnsupportedCompression.
// CodecNone returns src itself.
func (d *Decompressor) Decompress(codec byte, src []byte, limit int) ([]byte, error) {
	limit = max(limit, 0)
	var out []byte
	var err error
	switch codec {
	case CodecNone:
		return src, nil
	case CodecGzip:
		d.src.Reset(src)
		if err = d.gz.Reset(&d.src); err == nil {
			d.gz.Multistream(true)
			out, err = d.readAll(&d.gz, limit)
		}
	case CodecSnappy:
		out, err = d.snappy(src, limit)
	case CodecLz4:
		d.src.Reset(src)
		if d.lz == nil {
			d.lz = lz4.NewReader(&d.src)
		} else {
			d.lz.Reset(&d.src)
		}
		out, err = d.readAll(d.lz, limit)
	case CodecZstd:
		out, err = d.zstd(src, limit)
	default:
		return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, codec)
	}
	if err != nil {
		if errors.Is(err, ErrInvalidRecord) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: decompressing codec %d: %w", ErrCorrupt, codec, err)
	}
	return out, nil
}

func tooLarge(limit int) error {
	return fmt.Errorf("%w: records decompress to more than %d bytes", ErrInvalidRecord, limit)
}

// readAll reads r to EOF into d.buf, failing once more than limit bytes come.
func (d *Decompressor) readAll(r io.Reader, limit int) ([]byte, error) {
	buf := d.buf[:0]
	defer func() { d.buf = buf[:0] }()
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, tooLarge(limit)
			}
			grow := max(len(buf), 64<<10)
			grow = min(grow, limit+1-len(buf))
			buf = append(buf, make([]byte, grow)...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, tooLarge(limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (d *Decompressor) snappy(src []byte, limit int) ([]byte, error) {
	if len(src) <= xerialHeaderSize || !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > limit {
			return nil, tooLarge(limit)
		}
		out, err := s2.Decode(d.buf[:cap(d.buf)], src)
		if err == nil && cap(out) > cap(d.buf) {
			d.buf = out[:0]
		}
		return out, err
	}
	buf := d.buf[:0]
	src = src[xerialHeaderSize:]
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("truncated xerial block length")
		}
		l := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(l) > uint64(len(src)) {
			return nil, errors.New("xerial block longer than its input")
		}
		block := src[:l]
		src = src[l:]
		n, err := s2.DecodedLen(block)
		if err != nil {
			return nil, err
		}
		if n > limit-len(buf) {
			return nil, tooLarge(limit)
		}
		start := len(buf)
		buf = growLen(buf, n)
		if _, err := s2.Decode(buf[start:], block); err != nil {
			return nil, err
		}
	}
	d.buf = buf[:0]
	return buf, nil
}

// growLen extends b by n bytes, reallocating when needed.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func (d *Decompressor) zstd(src []byte, limit int) ([]byte, error) {
	if d.zs == nil {
		zs, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(limit)),
		)
		if err != nil {
			return nil, err
		}
		d.zs, d.zsLimit = zs, limit
	} else if d.zsLimit != limit {
		if err := d.zs.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(uint64(limit))); err != nil {
			return nil, err
		}
		d.zsLimit = limit
	}
	out, err := d.zs.DecodeAll(src, d.buf[:0])
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return nil, tooLarge(limit)
	}
	if err != nil {
		return nil, err
	}
	if cap(out) > cap(d.buf) {
		d.buf = out[:0]
	}
	if len(out) > limit {
		return nil, tooLarge(limit)
	}
	return out, nil
}
