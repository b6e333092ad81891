package egress

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// counting wraps h and counts the requests that reached it.
func counting(h http.HandlerFunc) (http.Handler, *atomic.Int64) {
	n := new(atomic.Int64)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}), n
}

func okJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func mustNew(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{{Timeout: -1}, {MaxResponseBytes: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

func TestSchemeRules(t *testing.T) {
	h, hits := counting(okJSON)
	plain := httptest.NewServer(h)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	pool := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	localhostURL := strings.Replace(plain.URL, "127.0.0.1", "localhost", 1)

	for _, tt := range []struct {
		name    string
		cfg     Config
		url     string
		wantErr error // nil → success
	}{
		{"http refused by default", Config{}, plain.URL, ErrURLNotAllowed},
		{"http loopback allowed in dev", Config{AllowHTTPLoopback: true}, plain.URL, nil},
		{"http localhost allowed in dev", Config{AllowHTTPLoopback: true}, localhostURL, nil},
		{"http non-loopback refused even in dev", Config{AllowHTTPLoopback: true}, "http://auth.example.invalid/x", ErrURLNotAllowed},
		{"http link-local refused in dev", Config{AllowHTTPLoopback: true}, "http://169.254.169.254/latest/meta-data/", ErrURLNotAllowed},
		{"https loopback refused by default", Config{RootCAs: pool}, tlsSrv.URL, ErrAddressNotAllowed},
		{"https loopback allowed in dev", Config{RootCAs: pool, AllowHTTPLoopback: true}, tlsSrv.URL, nil},
		{"user info refused", Config{AllowHTTPLoopback: true}, "https://user:pw@" + strings.TrimPrefix(tlsSrv.URL, "https://"), ErrURLNotAllowed},
		{"other scheme refused", Config{}, "ftp://auth.example.com/x", ErrURLNotAllowed},
		{"relative refused", Config{}, "/jwks", ErrURLNotAllowed},
		{"link-local v4 refused", Config{}, "https://169.254.169.254/latest/meta-data/", ErrAddressNotAllowed},
		{"link-local v4 refused in dev", Config{AllowHTTPLoopback: true}, "https://169.254.169.254/", ErrAddressNotAllowed},
		{"mapped link-local refused", Config{}, "https://[::ffff:169.254.169.254]/", ErrAddressNotAllowed},
		{"nat64 link-local refused", Config{}, "https://[64:ff9b::a9fe:a9fe]/", ErrAddressNotAllowed},
		{"link-local v6 refused", Config{}, "https://[fe80::1]/", ErrAddressNotAllowed},
		{"unspecified refused", Config{AllowHTTPLoopback: true}, "https://0.0.0.0:1/", ErrAddressNotAllowed},
		{"multicast refused", Config{}, "https://224.0.0.1/", ErrAddressNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			c := mustNew(t, tt.cfg)
			var v map[string]any
			err := c.GetJSON(context.Background(), tt.url, &v)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("GetJSON: %v", err)
				}
				if v["ok"] != true {
					t.Fatalf("body = %v", v)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if hits.Load() != before {
				t.Fatal("refused request reached the server")
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error leaks user info: %v", err)
			}
		})
		// The *http.Client form applies the same rules.
		t.Run(tt.name+"/HTTPClient", func(t *testing.T) {
			before := hits.Load()
			resp, err := mustNew(t, tt.cfg).HTTPClient().Get(tt.url)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("accepted, want a refusal")
			}
			if hits.Load() != before {
				t.Fatal("refused request reached the server")
			}
		})
	}
}

func TestUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(okJSON))
	defer srv.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true}) // system roots only
	var v any
	if err := c.GetJSON(context.Background(), srv.URL, &v); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tt := range []struct {
		addr       string
		loopbackOK bool
		ok         bool
	}{
		{"10.0.0.5", false, true}, // private ranges are allowed on purpose
		{"192.168.1.1", false, true},
		{"172.16.0.1", false, true},
		{"fd12::1", false, true},
		{"8.8.8.8", false, true},
		{"2001:db8::1", false, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"127.1.2.3", true, true},
		{"::1", false, false},
		{"::1", true, true},
		{"::ffff:127.0.0.1", false, false},
		{"169.254.169.254", true, false},
		{"169.254.0.1", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"64:ff9b::a9fe:a9fe", false, false},
		{"fe80::1", true, false},
		{"fe80::1%eth0", true, false},
		{"0.0.0.0", true, false},
		{"0.1.2.3", true, false},
		{"::", true, false},
		{"224.0.0.251", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"100.100.100.200", false, false},
		{"fd00:ec2::254", false, false},
	} {
		err := checkAddr(netip.MustParseAddr(tt.addr), tt.loopbackOK)
		if (err == nil) != tt.ok {
			t.Errorf("checkAddr(%s, loopbackOK=%v) = %v, want ok=%v", tt.addr, tt.loopbackOK, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("checkAddr(%s) error %v is not ErrAddressNotAllowed", tt.addr, err)
		}
	}
}

func TestPlainHTTPDialerIsLoopbackOnly(t *testing.T) {
	ctl := control(true, true)
	if err := ctl("tcp4", "10.0.0.1:80", nil); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("plain http dial to private address: %v", err)
	}
	if err := ctl("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("plain http dial to loopback: %v", err)
	}
	if err := ctl("tcp", "not-an-address", nil); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("unparsable address: %v", err)
	}
}

func TestRedirectRefused(t *testing.T) {
	target, targetHits := counting(okJSON)
	dst := httptest.NewServer(target)
	defer dst.Close()
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dst.URL+"/jwks", http.StatusFound)
	}))
	defer src.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true})

	var v any
	if err := c.GetJSON(context.Background(), src.URL, &v); !errors.Is(err, ErrRedirect) {
		t.Fatalf("GetJSON err = %v, want ErrRedirect", err)
	}
	if _, _, err := c.PostForm(context.Background(), src.URL, url.Values{"a": {"b"}}, nil); !errors.Is(err, ErrRedirect) {
		t.Fatalf("PostForm err = %v, want ErrRedirect", err)
	}
	if targetHits.Load() != 0 {
		t.Fatal("redirect was followed")
	}
}

func TestResponseSizeCap(t *testing.T) {
	const max = 1000
	body := `{"k":"` + strings.Repeat("x", max-8) + `"}` // exactly max bytes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/exact":
			_, _ = w.Write([]byte(body))
		case "/length": // announced by Content-Length
			_, _ = w.Write([]byte(body + " "))
		case "/chunked": // no Content-Length: streamed past the cap
			for range 4 {
				_, _ = w.Write([]byte(strings.Repeat(" ", max/2)))
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer srv.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true, MaxResponseBytes: max})

	var v map[string]string
	if err := c.GetJSON(context.Background(), srv.URL+"/exact", &v); err != nil {
		t.Fatalf("body of exactly the cap: %v", err)
	}
	for _, p := range []string{"/length", "/chunked"} {
		if err := c.GetJSON(context.Background(), srv.URL+p, &v); !errors.Is(err, ErrTooLarge) {
			t.Errorf("GetJSON %s err = %v, want ErrTooLarge", p, err)
		}
		if _, _, err := c.PostForm(context.Background(), srv.URL+p, nil, nil); !errors.Is(err, ErrTooLarge) {
			t.Errorf("PostForm %s err = %v, want ErrTooLarge", p, err)
		}
	}
}

func TestStatusErrorExcerpt(t *testing.T) {
	secretish := strings.Repeat("A", 200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("boom\x1b[31m\n" + secretish))
	}))
	defer srv.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true})
	var v any
	err := c.GetJSON(context.Background(), srv.URL+"/x?q=1", &v)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 {
		t.Fatalf("err = %v, want StatusError 500", err)
	}
	if len(se.Excerpt) > maxExcerpt || strings.ContainsAny(se.Excerpt, "\x1b\n") {
		t.Fatalf("excerpt not sanitized: %q", se.Excerpt)
	}
	if strings.Contains(err.Error(), secretish[:100]) || strings.Contains(err.Error(), "q=1") {
		t.Fatalf("error too verbose: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the client gives up
	}))
	defer srv.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true, Timeout: 50 * time.Millisecond})
	var v any
	if err := c.GetJSON(context.Background(), srv.URL, &v); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestBadJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"a":`))
	}))
	defer srv.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true})
	var v any
	if err := c.GetJSON(context.Background(), srv.URL, &v); err == nil {
		t.Fatal("truncated JSON accepted")
	}
}

func TestPostForm(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") != "t1" || r.Header.Get("X-Test") != "yes" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	defer srv.Close()
	c := mustNew(t, Config{AllowHTTPLoopback: true})
	status, body, err := c.PostForm(context.Background(), srv.URL, url.Values{"token": {"t1"}}, http.Header{"X-Test": {"yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized || string(body) != `{"error":"invalid_client"}` {
		t.Fatalf("status %d body %q", status, body)
	}
}

func TestEnvironmentProxyIgnored(t *testing.T) {
	h, hits := counting(okJSON)
	srv := httptest.NewServer(h)
	defer srv.Close()
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("NO_PROXY", "")
	c := mustNew(t, Config{AllowHTTPLoopback: true})
	var v any
	if err := c.GetJSON(context.Background(), srv.URL, &v); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatal("request did not go direct")
	}
}
