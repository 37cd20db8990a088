// Package wire reads Kafka request frames and writes response frames.
//
// A frame on the wire is a big-endian int32 size followed by that many bytes:
//
//	+----------+---------------------------------------------+
//	| size i32 | body (size bytes)                           |
//	+----------+---------------------------------------------+
//
// A request body starts with the request header:
//
//	api key i16 | api version i16 | correlation id i32 | client id (nullable string)
//	[tagged fields, when the request version is flexible (KIP-482)]
//
// and a response body with the response header:
//
//	correlation id i32 [tagged fields, when flexible; never for ApiVersions]
//
// The size is checked against a cap before any body buffer is allocated, and
// every length inside a frame is checked against the bytes that remain, so a
// hostile or broken client can make a connection fail but never make the
// broker allocate more than the cap or panic.
//
// Concurrency: a Reader belongs to one goroutine; the functions are pure.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors returned by ReadFrame and ParseRequest. Each means the connection
// cannot continue: the caller logs it and closes the connection.
var (
	// ErrFrameTooLarge is returned when a frame's size exceeds the cap.
	ErrFrameTooLarge = errors.New("broker/wire: frame too large")
	// ErrMalformed is returned for a request header or body that does not
	// parse.
	ErrMalformed = errors.New("broker/wire: malformed request")
	// ErrUnknownKey is returned for an API key kmsg does not know.
	ErrUnknownKey = errors.New("broker/wire: unknown api key")
)

// FrameTooLargeError reports a frame over the size cap; it wraps
// ErrFrameTooLarge.
type FrameTooLargeError struct {
	Size, Max int32
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("broker/wire: frame of %d bytes exceeds the %d byte limit (socket.request.max.bytes)", e.Size, e.Max)
}

// Unwrap returns ErrFrameTooLarge.
func (e *FrameTooLargeError) Unwrap() error { return ErrFrameTooLarge }

// ReadFrame reads one frame from r into buf (grown if needed, reused when it
// is large enough) and returns the body. A negative size or one larger than
// max is refused before allocating.
func ReadFrame(r io.Reader, buf []byte, max int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return buf, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 0 || n > max {
		return buf, &FrameTooLargeError{Size: n, Max: max}
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// Header is a parsed request header.
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
}

// ParseHeader parses the fixed part of a request header and returns it
// with the rest of the body (still holding the flexible header's tagged
// fields, if any).
func ParseHeader(body []byte) (Header, []byte, error) {
	if len(body) < 10 {
		return Header{}, nil, fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(body))
	}
	h := Header{
		Key:           int16(binary.BigEndian.Uint16(body[0:])),
		Version:       int16(binary.BigEndian.Uint16(body[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(body[4:])),
	}
	l := int16(binary.BigEndian.Uint16(body[8:]))
	rest := body[10:]
	if l > 0 {
		if int(l) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id of %d bytes, %d left", ErrMalformed, l, len(rest))
		}
		h.ClientID = string(rest[:l])
		rest = rest[l:]
	}
	return h, rest, nil
}

// ParseRequest decodes the request for h.Key at h.Version from rest (as
// returned by ParseHeader). The caller must have checked that the version is
// one it serves. The request may alias rest.
func ParseRequest(h Header, rest []byte) (kmsg.Request, error) {
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, h.Key)
	}
	req.SetVersion(h.Version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %w", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	return req, nil
}

// skipTags skips a tagged-field section (KIP-482) at the start of b.
func skipTags(b []byte) ([]byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for range n {
		var l uint64
		if _, b, err = uvarint(b); err != nil { // tag
			return nil, err
		}
		if l, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if l > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tagged field of %d bytes, %d left", ErrMalformed, l, len(b))
		}
		b = b[l:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<31 {
		return 0, nil, fmt.Errorf("%w: bad varint", ErrMalformed)
	}
	return v, b[n:], nil
}

// AppendResponse appends a whole response frame (size, header, body) for
// resp to dst. ApiVersions responses always use the v0 header (KIP-511),
// other flexible responses carry an empty tagged-field section.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
