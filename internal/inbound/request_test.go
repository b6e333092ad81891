package inbound

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// wantErr checks that e is nil when status is 0, and otherwise an *Error
// with that status, JSON-RPC code and reason.
func wantErr(t *testing.T, e *Error, status, code int, reason string) {
	t.Helper()
	if status == 0 {
		if e != nil {
			t.Fatalf("unexpected error: %v (status %d, code %d)", e, e.Status, e.Code)
		}
		return
	}
	if e == nil {
		t.Fatalf("got no error, want status %d code %d reason %q", status, code, reason)
	}
	if e.Status != status || e.Code != code || e.Reason != reason {
		t.Fatalf("got status %d code %d reason %q (%s), want %d %d %q",
			e.Status, e.Code, e.Reason, e.Message, status, code, reason)
	}
	if e.Message == "" {
		t.Errorf("error %q has an empty client message", e.Reason)
	}
}

func TestCheckOrigin(t *testing.T) {
	allowed := map[string]bool{"https://app.example.com": true, "http://localhost:6274": true}
	for _, tt := range []struct {
		name    string
		origins []string // nil: no Origin header
		ok      bool
	}{
		{"absent", nil, true},
		{"listed", []string{"https://app.example.com"}, true},
		{"listed with port", []string{"http://localhost:6274"}, true},
		{"listed, different case", []string{"HTTPS://App.Example.COM"}, true},
		{"unlisted", []string{"https://evil.example"}, false},
		{"listed host, other scheme", []string{"http://app.example.com"}, false},
		{"listed host, other port", []string{"http://localhost:8080"}, false},
		{"trailing slash", []string{"https://app.example.com/"}, false},
		{"null", []string{"null"}, false},
		{"empty value", []string{""}, false},
		{"two headers, both listed", []string{"https://app.example.com", "http://localhost:6274"}, false},
		{"two headers, one listed", []string{"https://evil.example", "https://app.example.com"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, o := range tt.origins {
				h.Add("Origin", o)
			}
			e := CheckOrigin(h, allowed)
			if tt.ok {
				wantErr(t, e, 0, 0, "")
				return
			}
			wantErr(t, e, http.StatusForbidden, CodeInvalidRequest, "origin")
		})
	}
	t.Run("empty allow-list refuses every Origin", func(t *testing.T) {
		h := http.Header{"Origin": {"https://app.example.com"}}
		wantErr(t, CheckOrigin(h, nil), http.StatusForbidden, CodeInvalidRequest, "origin")
		wantErr(t, CheckOrigin(http.Header{}, nil), 0, 0, "")
	})
}

// unreadable is a body that fails the test if anything reads it.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("body was read")
	return 0, io.EOF
}

func TestReadBody(t *testing.T) {
	const limit = 64
	full := strings.Repeat("x", limit)
	for _, tt := range []struct {
		name        string
		contentType string // "" → header absent
		body        io.Reader
		length      int64 // -1: unknown (chunked)
		status      int
		reason      string
	}{
		{"json", "application/json", strings.NewReader(`{}`), 2, 0, ""},
		{"json with charset", "application/json; charset=utf-8", strings.NewReader(`{}`), 2, 0, ""},
		{"media type is case-insensitive", "Application/JSON", strings.NewReader(`{}`), 2, 0, ""},
		{"exactly the limit", "application/json", strings.NewReader(full), limit, 0, ""},
		{"exactly the limit, chunked", "application/json", strings.NewReader(full), -1, 0, ""},
		{"empty body", "application/json", strings.NewReader(""), 0, 0, ""},
		{"missing content type", "", strings.NewReader(`{}`), 2,
			http.StatusUnsupportedMediaType, "content_type"},
		{"text/plain", "text/plain", strings.NewReader(`{}`), 2,
			http.StatusUnsupportedMediaType, "content_type"},
		{"json suffix type", "application/json-seq", strings.NewReader(`{}`), 2,
			http.StatusUnsupportedMediaType, "content_type"},
		{"form", "application/x-www-form-urlencoded", strings.NewReader(`a=b`), 3,
			http.StatusUnsupportedMediaType, "content_type"},
		{"malformed content type", "application/json; =", strings.NewReader(`{}`), 2,
			http.StatusUnsupportedMediaType, "content_type"},
		{"content length over the limit is refused unread", "application/json", unreadable{t}, limit + 1,
			http.StatusRequestEntityTooLarge, "body_too_large"},
		{"chunked body over the limit", "application/json", strings.NewReader(full + "x"), -1,
			http.StatusRequestEntityTooLarge, "body_too_large"},
		{"chunked body far over the limit", "application/json", bytes.NewReader(make([]byte, 10*limit)), -1,
			http.StatusRequestEntityTooLarge, "body_too_large"},
		{"read error", "application/json", iotest.ErrReader(errors.New("connection reset")), -1,
			http.StatusBadRequest, "body_read"},
		{"read error after data", "application/json",
			io.MultiReader(strings.NewReader(`{"a":`), iotest.ErrReader(io.ErrUnexpectedEOF)), -1,
			http.StatusBadRequest, "body_read"},
		{"declared length, body cut short", "application/json", strings.NewReader(`{"a":`), 9,
			http.StatusBadRequest, "body_read"},
		{"declared length, read error", "application/json", iotest.ErrReader(errors.New("connection reset")), 2,
			http.StatusBadRequest, "body_read"},
		{"declared length, one byte at a time", "application/json", iotest.OneByteReader(strings.NewReader(full)), limit, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", tt.body)
			r.ContentLength = tt.length
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			body, e := ReadBody(httptest.NewRecorder(), r, Limits{MaxBodyBytes: limit})
			if tt.status == 0 {
				wantErr(t, e, 0, 0, "")
				if tt.length >= 0 && int64(len(body)) != tt.length {
					t.Errorf("read %d bytes, want %d", len(body), tt.length)
				}
				return
			}
			wantErr(t, e, tt.status, CodeInvalidRequest, tt.reason)
			if body != nil {
				t.Errorf("body = %q on error, want nil", body)
			}
		})
	}
}

// TestReadBodyOverHTTP reads through a real server: the limit holds for
// a chunked upload, and the read deadline ends a body that never finishes.
func TestReadBodyOverHTTP(t *testing.T) {
	type result struct {
		n int
		e *Error
	}
	results := make(chan result, 1)
	lim := Limits{MaxBodyBytes: 1 << 10, BodyReadTimeout: 100 * time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, e := ReadBody(w, r, lim)
		results <- result{len(body), e}
		if e != nil {
			http.Error(w, e.Message, e.Status)
		}
	}))
	defer srv.Close()

	post := func(t *testing.T, body io.Reader) result {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return <-results
	}

	t.Run("chunked within the limit", func(t *testing.T) {
		// io.MultiReader hides the length, so the client sends it chunked.
		got := post(t, io.MultiReader(strings.NewReader(strings.Repeat(" ", 1<<10))))
		wantErr(t, got.e, 0, 0, "")
		if got.n != 1<<10 {
			t.Errorf("read %d bytes, want %d", got.n, 1<<10)
		}
	})
	t.Run("chunked over the limit", func(t *testing.T) {
		got := post(t, io.MultiReader(strings.NewReader(strings.Repeat(" ", 1<<11))))
		wantErr(t, got.e, http.StatusRequestEntityTooLarge, CodeInvalidRequest, "body_too_large")
	})
	t.Run("body that never ends hits the read deadline", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() { _, _ = pw.Write([]byte(`{"jsonrpc":`)) }()
		got := post(t, pr)
		wantErr(t, got.e, http.StatusBadRequest, CodeInvalidRequest, "body_read")
	})
}
