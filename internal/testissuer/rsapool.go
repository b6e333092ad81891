package testissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"sync"
)

// RSA key generation takes seconds under the race detector, so the RSA keys
// a test process generates are pooled and reused across issuers. Keys are
// always generated at run time; the repository holds no key material. An
// issuer never gets the same key twice, but two issuers in one process may
// share RSA key material (under different kids): Options.UniqueRSAKeys
// avoids that at the cost of generation time.
var rsaPool struct {
	mu   sync.Mutex // guards the fields below
	keys []*rsa.PrivateKey
	next int
}

// poolRSA returns an RSA key whose index is not in used, and its index.
func poolRSA(used map[int]bool) (int, *rsa.PrivateKey) {
	rsaPool.mu.Lock()
	defer rsaPool.mu.Unlock()
	for range rsaPool.keys {
		i := rsaPool.next % len(rsaPool.keys)
		rsaPool.next++
		if !used[i] {
			return i, rsaPool.keys[i]
		}
	}
	k := freshRSA()
	rsaPool.keys = append(rsaPool.keys, k)
	return len(rsaPool.keys) - 1, k
}

func freshRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("testissuer: generate rsa key: " + err.Error())
	}
	return k
}
