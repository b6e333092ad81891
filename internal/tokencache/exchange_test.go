package tokencache

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/credential"
	"github.com/mcpgate/mcpgate/internal/redistest"
)

// TestExchangeReplicas: two gateway replicas (each its own Conn, Cache
// and Exchange) behind one Redis: a token one obtained is served by the
// other without a token request; with Redis down, exchanges still work.
func TestExchangeReplicas(t *testing.T) {
	var hits atomic.Int64
	var mu sync.Mutex
	var issued []string
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = r.ParseForm()
		tok := tcToken(t, "sub-of-"+r.PostForm.Get("subject_token")[:6])
		mu.Lock()
		issued = append(issued, tok)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 600,
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
	}))
	t.Cleanup(as.Close)
	clientSecret := "cs-" + tcNewKey(t, "x").b64[:20]
	srv := redistest.Start(t)
	keys := tcKeysFile(t, tcNewKey(t, "k1"))
	logs := &tcLogs{}
	replica := func() *credential.Exchange {
		ep, err := credential.NewTokenEndpoint(credential.TokenEndpointConfig{TokenURL: as.URL + "/token", ClientID: "gw",
			ClientSecret: func() ([]byte, error) { return []byte(clientSecret), nil }, Logger: logs.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		cache := tcNew(t, tcConn(t, srv, "xr:", 300*time.Millisecond), keys, func(c *Config) { c.Logger = logs.Logger() })
		x, err := credential.NewExchange(credential.ExchangeConfig{Endpoint: ep, Resource: "https://docs.upstream.test/mcp",
			Shared: cache, Logger: logs.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	a, b := replica(), replica()
	ctx := context.Background()
	caller := func(sub string) credential.Caller {
		return credential.Caller{Token: "in-" + tcNewKey(t, "x").b64[:30], Issuer: "https://idp.example.test", Subject: sub,
			ClientID: "app", Expiry: time.Now().Add(time.Hour)}
	}
	alice, bob := caller("alice"), caller("bob")

	ca, err := a.Credential(ctx, alice)
	if err != nil || hits.Load() != 1 {
		t.Fatalf("A: %v, %d requests", err, hits.Load())
	}
	cb, err := b.Credential(ctx, alice)
	if err != nil || cb.Secret != ca.Secret || cb.ID != ca.ID || !cb.Expiry.Equal(ca.Expiry) || hits.Load() != 1 {
		t.Fatalf("B: %v, same token %v, %d requests", err, cb.Secret == ca.Secret, hits.Load())
	}
	// Another caller: never served Alice's token.
	bb, err := b.Credential(ctx, bob)
	if err != nil || bb.Secret == ca.Secret || hits.Load() != 2 {
		t.Fatalf("bob: %v, %d requests", err, hits.Load())
	}
	// Alice on B with a new inbound token: the same cache key, still served.
	alice2 := alice
	alice2.Token = "in-" + tcNewKey(t, "x").b64[:30]
	if c, err := a.Credential(ctx, alice2); err != nil || c.Secret != ca.Secret || hits.Load() != 2 {
		t.Errorf("alice, new inbound token: %v", err)
	}

	// Redis down: a fresh replica still exchanges (and says why it could
	// not use the cache); the call does not fail.
	c := replica()
	srv.Stop()
	start := time.Now()
	cc, err := c.Credential(ctx, alice)
	if err != nil || cc.Secret == "" || hits.Load() != 3 {
		t.Fatalf("with Redis down: %v, %d requests", err, hits.Load())
	}
	if d := time.Since(start); d > 2*credential.SharedCacheTimeout+500*time.Millisecond {
		t.Errorf("the exchange took %v with Redis down", d)
	}
	if !strings.Contains(logs.String(), "shared token cache unavailable") || !strings.Contains(logs.String(), "could not share") {
		t.Errorf("the degradation is not logged: %s", logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range append(issued, alice.Token, alice2.Token, bob.Token, clientSecret) {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a token or secret (%.8s…) is in the logs", s)
		}
	}
}
