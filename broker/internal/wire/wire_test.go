package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func requestBody(req kmsg.Request, v int16, corr int32, client string) []byte {
	req.SetVersion(v)
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(v))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(client)))
	b = append(b, client...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int32
		want    []byte
		wantErr error
	}{
		{"empty body", frame(nil), 10, []byte{}, nil},
		{"body", frame([]byte("abc")), 10, []byte("abc"), nil},
		{"at the cap", frame([]byte("abcd")), 4, []byte("abcd"), nil},
		{"over the cap", frame([]byte("abcde")), 4, nil, ErrFrameTooLarge},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe}, 4, nil, ErrFrameTooLarge},
		{"torn size", []byte{0, 0}, 4, nil, io.ErrUnexpectedEOF},
		{"torn body", []byte{0, 0, 0, 3, 'a'}, 4, nil, io.ErrUnexpectedEOF},
		{"eof", nil, 4, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time: frames may arrive in pieces.
			got, err := ReadFrame(iotest.OneByteReader(bytes.NewReader(tt.in)), nil, tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("body = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	got, err := ReadFrame(bytes.NewReader(frame([]byte("hello"))), buf, 100)
	if err != nil || &got[:1][0] != &buf[:1][0] {
		t.Fatalf("buffer not reused (err %v)", err)
	}
}

func TestParseRequestRoundTrip(t *testing.T) {
	meta := kmsg.NewPtrMetadataRequest()
	topic := "orders"
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	for _, v := range []int16{0, 4, 9, 12} {
		body := requestBody(meta, v, 77, "client-1")
		h, rest, err := ParseHeader(body)
		if err != nil {
			t.Fatal(err)
		}
		if h.Key != 3 || h.Version != v || h.CorrelationID != 77 || h.ClientID != "client-1" {
			t.Fatalf("v%d: header %+v", v, h)
		}
		req, err := ParseRequest(h, rest)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		got := req.(*kmsg.MetadataRequest)
		if len(got.Topics) != 1 || *got.Topics[0].Topic != "orders" {
			t.Fatalf("v%d: topics %+v", v, got.Topics)
		}
	}
}

func TestAppendResponseHeaders(t *testing.T) {
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	b := AppendResponse(nil, 9, av)
	// ApiVersions v3 keeps the v0 response header: no tag byte after the id.
	if want := len(av.AppendTo(nil)) + 4; int(binary.BigEndian.Uint32(b)) != want {
		t.Fatalf("ApiVersions v3 frame size %d, want %d", binary.BigEndian.Uint32(b), want)
	}
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(9)
	b = AppendResponse(nil, 9, md)
	if want := len(md.AppendTo(nil)) + 5; int(binary.BigEndian.Uint32(b)) != want {
		t.Fatalf("Metadata v9 frame size %d, want %d", binary.BigEndian.Uint32(b), want)
	}
}

// FuzzReadRequest feeds arbitrary bytes, split in two writes, through the
// framing and request decoding: it must never panic, never return a body
// larger than the cap, and a body that parses must parse the same again.
func FuzzReadRequest(f *testing.F) {
	meta := kmsg.NewPtrMetadataRequest()
	f.Add(frame(requestBody(meta, 9, 1, "c")), 3)
	f.Add(frame(requestBody(kmsg.NewPtrApiVersionsRequest(), 3, 2, "")), 1)
	prod := kmsg.NewPtrProduceRequest()
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte("xyz")}}}}
	f.Add(frame(requestBody(prod, 7, 3, "p")), 10)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 1}}}}
	f.Add(frame(requestBody(fetch, 12, 4, "f")), 0)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, 2)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		const max = 1 << 16
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		r := io.MultiReader(bytes.NewReader(in[:split]), bytes.NewReader(in[split:]))
		for {
			body, err := ReadFrame(r, nil, max)
			if err != nil {
				return
			}
			if len(body) > max || len(body) > len(in) {
				t.Fatalf("body of %d bytes from %d input bytes", len(body), len(in))
			}
			h, rest, err := ParseHeader(body)
			if err != nil {
				continue
			}
			if _, ok := known(h); !ok {
				continue
			}
			req, err := ParseRequest(h, rest)
			if err != nil {
				continue
			}
			again, err := ParseRequest(h, rest)
			if err != nil || again.Key() != req.Key() {
				t.Fatalf("reparse: %v", err)
			}
		}
	})
}

func known(h Header) (kmsg.Request, bool) {
	req := kmsg.RequestForKey(h.Key)
	if req == nil || h.Version < 0 || h.Version > req.MaxVersion() {
		return nil, false
	}
	return req, true
}
