package handler

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime/pprof"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/broker/internal/wire"
)

// maxInflight bounds the responses queued per connection: the reader stops
// reading once this many are waiting to be written.
const maxInflight = 64

// Serve handles one client connection until it closes, an unrecoverable
// protocol error occurs, or ctx is done. It closes conn.
func (h *Handler) Serve(ctx context.Context, conn net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan response, maxInflight)
	var wg sync.WaitGroup
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("conn", "write"), func(ctx context.Context) {
			h.writeLoop(ctx, conn, queue)
		})
		// A dead writer must stop the reader too.
		cancel()
		conn.Close()
	})
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	h.readLoop(ctx, conn, queue)
	close(queue)
	wg.Wait()
}

func (h *Handler) readLoop(ctx context.Context, conn net.Conn, queue chan<- response) {
	log := h.cfg.Logger
	br := bufio.NewReaderSize(conn, 64<<10)
	host := "/" + conn.RemoteAddr().String()
	if ip, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		host = "/" + ip // Kafka reports client hosts as "/ip"
	}
	var buf []byte
	for {
		var err error
		buf, err = wire.ReadFrame(br, buf, h.cfg.MaxRequestBytes)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				log.Warn("closing connection", "remote", conn.RemoteAddr().String(), "err", err)
			}
			return
		}
		hdr, rest, err := wire.ParseHeader(buf)
		if err != nil {
			log.Warn("closing connection", "remote", conn.RemoteAddr().String(), "err", err)
			return
		}
		resp, ok, err := h.dispatch(ctx, hdr, rest, connInfo{clientID: hdr.ClientID, host: host})
		if err != nil {
			log.Warn("closing connection", "remote", conn.RemoteAddr().String(), "client", hdr.ClientID,
				"api", kmsg.NameForKey(hdr.Key), "version", hdr.Version, "err", err)
			return
		}
		if !ok {
			continue
		}
		resp.corr = hdr.CorrelationID
		select {
		case queue <- resp:
		case <-ctx.Done():
			if resp.release != nil {
				resp.release()
			}
			return
		}
	}
}

// errUnsupported is returned for an API key or version the broker does not
// advertise; the connection is closed, as Kafka does.
var errUnsupported = errors.New("broker/handler: unsupported api key or version")

func (h *Handler) dispatch(ctx context.Context, hdr wire.Header, rest []byte, ci connInfo) (response, bool, error) {
	vr, known := rangeByKey[hdr.Key]
	if hdr.Key == 18 && hdr.Version > vr.max {
		// KIP-511: answer an ApiVersions we cannot parse with a v0 body
		// carrying UNSUPPORTED_VERSION and our ranges.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		appendKeys(resp)
		return response{msg: resp}, true, nil
	}
	if !known || hdr.Version < vr.min || hdr.Version > vr.max {
		return response{}, false, errUnsupported
	}
	req, err := wire.ParseRequest(hdr, rest)
	if err != nil {
		return response{}, false, err
	}
	if hdr.Version < vr.serveMin {
		return response{msg: unsupportedVersion(req)}, true, nil
	}
	resp, ok := h.handle(ctx, req, ci)
	if resp.msg != nil {
		resp.msg.SetVersion(hdr.Version)
	}
	return resp, ok, nil
}

// unsupportedVersion answers a request in an advertised but unserved
// version (Produce v0-2) with UNSUPPORTED_VERSION on every partition.
func unsupportedVersion(req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.ProduceResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.UnsupportedVersion.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		resp.SetVersion(r.GetVersion())
		return resp
	}
	panic("handler: no unsupported-version answer for " + kmsg.NameForKey(req.Key()))
}

func (h *Handler) writeLoop(ctx context.Context, conn net.Conn, queue <-chan response) {
	bw := bufio.NewWriterSize(conn, 64<<10)
	var buf []byte
	failed := false
	for resp := range queue {
		if failed {
			if resp.release != nil {
				resp.release()
			}
			continue
		}
		msg := resp.msg
		if resp.finish != nil {
			v := msg
			msg = resp.finish(ctx)
			if msg != nil && v != nil {
				msg.SetVersion(v.GetVersion())
			}
		}
		if msg == nil { // the connection is going away
			failed = true
			if resp.release != nil {
				resp.release()
			}
			continue
		}
		buf = wire.AppendResponse(buf[:0], resp.corr, msg)
		if resp.release != nil {
			resp.release()
		}
		_, err := bw.Write(buf)
		if err == nil && len(queue) == 0 {
			err = bw.Flush()
		}
		if err != nil {
			failed = true
			conn.Close()
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a large fetch response's buffer
		}
	}
}
