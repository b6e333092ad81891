package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// newBody returns a request body over bytes the gateway owns. The transport
// may read it at any time, even after the handler returned, without touching
// the inbound connection.
func newBody(b []byte) (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
	if b == nil {
		return http.NoBody, 0, func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	rc, _ := get()
	return rc, int64(len(b)), get
}

// errResponseTooLarge is returned when a body that must be inspected
// exceeds the configured bound.
var errResponseTooLarge = errors.New("upstream response too large to inspect")

// transformJSON replaces resp.Body with f applied to the whole body (JSON,
// or any other bounded body).
func transformJSON(resp *http.Response, f func([]byte) ([]byte, error), limit int64) error {
	defer resp.Body.Close()
	b, err := readBounded(resp.Body, resp.ContentLength, limit)
	if err != nil {
		return err
	}
	out, err := f(b)
	if err != nil {
		return err
	}
	resp.Body = &bytesBody{Reader: bytes.NewReader(out)}
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// readBounded reads a whole body of at most limit bytes; size is its
// declared length (-1 when unknown), read in one allocation when known.
func readBounded(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, errResponseTooLarge
	}
	if size < 0 || size > maxPrealloc {
		// Unknown, or too large to trust the declaration with memory
		// before the bytes arrive: grow as they come.
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return nil, fmt.Errorf("read upstream response: %w", err)
		}
		if int64(len(b)) > limit {
			return nil, errResponseTooLarge
		}
		return b, nil
	}
	// One byte more than declared, so that the end of the body is seen.
	b := make([]byte, size+1)
	n, err := io.ReadFull(r, b)
	switch {
	case int64(n) == size && (err == io.ErrUnexpectedEOF || err == io.EOF):
		return b[:n], nil
	case err == nil:
		return nil, fmt.Errorf("read upstream response: body longer than its Content-Length %d", size)
	default:
		return nil, fmt.Errorf("read upstream response: %w", err)
	}
}

// maxPrealloc bounds the buffer readBounded allocates from a declared
// Content-Length.
const maxPrealloc = 64 << 10

// bytesBody is a response body held in memory.
type bytesBody struct{ *bytes.Reader }

func (bytesBody) Close() error { return nil }

// doneBody reports the relayed byte count and the terminal error once.
// Like noTrailers, it drops the response's trailers once the body is read.
type doneBody struct {
	io.ReadCloser
	h    Handler
	resp *http.Response
	n    int64
	once atomic.Bool
}

func (d *doneBody) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	d.n += int64(n)
	if err != nil {
		d.finish(err)
	}
	return n, err
}

func (d *doneBody) Close() error {
	err := d.ReadCloser.Close()
	d.finish(nil)
	return err
}

func (d *doneBody) finish(err error) {
	d.resp.Trailer = nil
	if !d.once.CompareAndSwap(false, true) {
		return
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	d.h.OnDone(d.n, err)
}

// bufferPool recycles the copy buffers of the reverse proxy: 8 KiB, as a
// long-lived event stream holds one for its whole life.
type bufferPool struct{ p *sync.Pool }

const copyBufferSize = 8 << 10

func newBufferPool() bufferPool {
	return bufferPool{&sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

// Put takes back a buffer from Get; the conversion to an array pointer
// stores it without allocating.
func (b bufferPool) Put(s []byte) {
	if len(s) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(s))
	}
}

// noTrailers drops the trailers of a response once its body is read: the
// transport fills resp.Trailer at the end of the body, and the reverse
// proxy relays whatever it finds there after the body.
type noTrailers struct {
	io.ReadCloser
	resp *http.Response
}

func (n *noTrailers) Read(p []byte) (int, error) {
	k, err := n.ReadCloser.Read(p)
	if err != nil {
		n.resp.Trailer = nil
	}
	return k, err
}

func (n *noTrailers) Close() error {
	err := n.ReadCloser.Close()
	n.resp.Trailer = nil
	return err
}
