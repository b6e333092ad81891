package revoke

import (
	"fmt"
	"testing"
	"time"
)

// benchList holds 10 000 entries: a third of each kind. Its clock is a
// constant, so that hits measure the list and not a clock (a hit reads the
// clock once; time.Now costs some 20-50 ns).
func benchList(b *testing.B) *List {
	b.Helper()
	l, _ := newList(b, Config{Now: func() time.Time { return t0 }})
	for i := range 10000 {
		e := Entry{Kind: []Kind{KindJTI, KindSubject, KindClient}[i%3], Issuer: iss, Value: fmt.Sprintf("v-%05d", i)}
		if e.Kind != KindJTI {
			e.NotBefore = t0.Add(-time.Minute)
		}
		mustAdd(b, l, e)
	}
	if l.Len() != 10000 {
		b.Fatalf("Len = %d", l.Len())
	}
	return l
}

func BenchmarkCheck(b *testing.B) {
	l := benchList(b)
	iat := t0.Add(-time.Hour)
	cases := []struct {
		name string
		tok  Token
		hit  bool
	}{
		{"hit-jti", Token{Issuer: iss, JTI: "v-00003", Subject: "u", ClientID: "c", IssuedAt: iat}, true},
		{"hit-subject", Token{Issuer: iss, JTI: "none", Subject: "v-00004", ClientID: "c", IssuedAt: iat}, true},
		{"hit-client", Token{Issuer: iss, JTI: "none", Subject: "u", ClientID: "v-00005", IssuedAt: iat}, true},
		{"miss", Token{Issuer: iss, JTI: "f3a9c1d2-7b4e-4c1a-9e0f-5d6b7a8c9e01", Subject: "user-1234", ClientID: "web-app", IssuedAt: iat}, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := l.Check(c.tok); ok != c.hit {
					b.Fatalf("Check = %v", ok)
				}
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, ok := l.Check(c.tok); ok != c.hit {
						b.Error("wrong result")
						return
					}
				}
			})
		})
	}
}

func BenchmarkCheckEmpty(b *testing.B) {
	l, _ := newList(b, Config{})
	tok := Token{Issuer: iss, JTI: "j", Subject: "s", ClientID: "c", IssuedAt: t0}
	b.ReportAllocs()
	for b.Loop() {
		l.Check(tok)
	}
}

func BenchmarkAdd10k(b *testing.B) {
	l := benchList(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: "v-00003"}); err != nil {
			b.Fatal(err)
		}
	}
}
