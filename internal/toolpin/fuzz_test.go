package toolpin

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzFingerprint: no panic; every error is ErrMalformed; an accepted
// definition keeps its fingerprint when re-serialised by encoding/json
// (other key order, other escaping, other whitespace), when indented, and
// when its own canonical form is fingerprinted.
func FuzzFingerprint(f *testing.F) {
	for _, s := range []string{
		baseTool,
		`{"name":"t"}`,
		`{"name":"t","description":"\ud83d\ude00 <&> \u2028","x":[1.50e+2,-0,1E-7,123456789012345678901234567890]}`,
		`{"name":"t","inputSchema":{"required":["b","a"],"enum":[{"b":1,"a":2},[2,1]],"type":["null","string"],"items":[{"required":["y","x"]}]}}`,
		`{"name":"t","_meta":{"a":[1,{"b":null}]},"annotations":{"title":"x"}}`,
		`{"name":"t","name":"u"}`,
		`{"name":"t","description":"\ud800"}`,
		`{"name":"t","x":1e99999999999999999999}`,
		"{\"name\":\"t\",\"d\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := parseDefinition(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		if !validFingerprint(d.fingerprint) {
			t.Fatalf("fingerprint %q", d.fingerprint)
		}
		d2, err := parseDefinition(d.canonical)
		if err != nil || d2.fingerprint != d.fingerprint || !bytes.Equal(d2.canonical, d.canonical) {
			t.Fatalf("canonical form %s not a fixed point: %v", d.canonical, err)
		}
		// Re-serialise with encoding/json: keys sorted its way, HTML
		// escaping, numbers kept as written.
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("encoding/json rejects accepted input: %v", err)
		}
		re, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Fingerprint(re); err != nil || got != d.fingerprint {
			t.Fatalf("re-serialised %s: %q, %v; want %q", re, got, err, d.fingerprint)
		}
		var ind bytes.Buffer
		if err := json.Indent(&ind, in, "  ", "\t"); err != nil {
			t.Fatal(err)
		}
		if got, err := Fingerprint(ind.Bytes()); err != nil || got != d.fingerprint {
			t.Fatalf("indented: %q, %v; want %q", got, err, d.fingerprint)
		}
	})
}

// FuzzParseFile: no panic; every error is ErrCorrupt; an accepted file
// re-encodes to a file that parses to the same state.
func FuzzParseFile(f *testing.F) {
	v := []byte(`{"name":"t","description":"x"}`)
	fpv, _ := Fingerprint(v)
	for _, s := range []string{
		`{"version":1,"tools":[],"approvals":[]}`,
		`{"version":1,"tools":[{"route":"/r","tool":"t","observed":"` + fpv + `","observed_at":"2026-05-01T10:00:00Z","definition":` + string(v) + `}],
		  "approvals":[{"route":"/r","tool":"t","fingerprint":"` + fpv + `","approved_at":"2026-05-01T11:00:00Z"}]}`,
		`{"version":1,"tools":[{"route":"/r","tool":"t","pin":"` + fpv + `","pin_source":"first_use","observed":"` + fpv + `"}]}`,
		`{"version":2}`,
		`{"version":1,"version":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		doc, err := parseFile(in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		out, err := encodeFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		doc2, err := parseFile(out)
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v\n%s", err, out)
		}
		out2, err := encodeFile(doc2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable:\n%s\n%s", out, out2)
		}
	})
}
