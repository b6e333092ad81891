package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read upstream response: %w", err)
	}
	if int64(len(b)) > limit {
		return errResponseTooLarge
	}
	out, err := f(b)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// doneBody reports the relayed byte count and the terminal error once.
type doneBody struct {
	io.ReadCloser
	done func(int64, error)
	n    int64
	once sync.Once
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
	d.once.Do(func() {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if d.done != nil {
			d.done(d.n, err)
		}
	})
}

// bufferPool recycles the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{&sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b bufferPool) Put(s []byte) { b.p.Put(&s) }

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
