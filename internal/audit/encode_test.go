package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// trickyStrings need escaping, or look as if they did.
func trickyStrings() []string {
	return []string{
		"",
		`"quoted" and \back\slash\`,
		"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
		"<script>alert(1)&amp;</script>",
		"line\u2028sep\u2029para",
		"bad utf8 \xff\xfe \xc3\x28 \xe2\x82 \xf0\x9f\x98 end\xe2",
		"emoji 😀👍🏽 and accents éü and CJK 漢字",
		"\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa", // U+2028, U+2029, U+202A
		"\ufffd replacement char itself",
		"/forward/slash",
		strings.Repeat("long ", 100),
	}
}

// fullEvent sets every field, the checkpoint included.
func fullEvent() *Event {
	return &Event{
		Seq: 18446744073709551615, Prev: strings.Repeat("ab", 32),
		Time: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC),
		Kind: KindDecision, RequestID: "req-1", Route: "docs", Upstream: "docs-mcp", RemoteIP: "192.0.2.1",
		HTTPMethod: "POST", ProtocolVersion: "2025-06-18", Session: "fp-sess", Issuer: "https://idp.example",
		Subject: "user-42", ClientID: "client-a", Actor: []string{"svc-a", "svc-b"}, Token: "fp-1a2b3c",
		Scopes: []string{"docs.read", "docs.write"}, Method: "tools/call", RPCID: "7", Tool: "read_document",
		Prompt: "p", Resource: "file:///x", ArgsDigest: strings.Repeat("0f", 32),
		Arguments: json.RawMessage(`{"path":"/a","n":[1,2.5,-3e-7],"ok":true,"none":null}`),
		Decision:  Allow, Rule: "tool:read_document", Labels: []string{"read", "pii"}, Reason: "ok",
		Status: 200, RequiredScopes: []string{"docs.read"}, UpstreamStatus: 502, LatencyMS: 12.345,
		UpstreamMS: 0.001, Bytes: -9223372036854775808, Filtered: 3, CredentialMode: "mint", CredentialID: "jti-9",
		Findings:   []Finding{{Detector: "aws", Action: "redact", Where: "arguments", Count: 2}, {}},
		Anomalies:  []string{"burst"},
		Checkpoint: &Checkpoint{KeyID: "k", Reason: ReasonInterval, Signature: "c2ln"},
	}
}

func TestAppendEventJSONMatchesMarshal(t *testing.T) {
	type tc struct {
		name string
		e    *Event
	}
	tcs := []tc{
		{"zero", &Event{}},
		{"typical decision", event(1)},
		{"full", fullEvent()},
		{"empty non-nil slices are omitted", &Event{Actor: []string{}, Scopes: []string{}, Labels: []string{},
			RequiredScopes: []string{}, Anomalies: []string{}, Findings: []Finding{}, Arguments: json.RawMessage{}}},
		{"slices of empty strings", &Event{Actor: []string{""}, Scopes: []string{"", ""}, Findings: []Finding{{}}}},
		{"negative ints", &Event{Status: -1, UpstreamStatus: math.MinInt, Bytes: math.MaxInt64, Filtered: -7,
			Findings: []Finding{{Count: math.MaxInt}}}},
		{"negative zero float is omitted", &Event{LatencyMS: math.Copysign(0, -1), UpstreamMS: math.Copysign(0, -1)}},
		{"checkpoint", &Event{Kind: KindCheckpoint, Decision: DecisionCheckpoint, Checkpoint: &Checkpoint{}}},
	}
	for i, s := range trickyStrings() {
		e := fullEvent()
		e.Prev, e.RequestID, e.Route, e.Tool, e.Decision, e.Kind = s, s, s, s, s, Kind(s)
		e.Actor, e.Scopes, e.Anomalies = []string{s, s}, []string{s}, []string{"x", s}
		e.Findings = []Finding{{Detector: s, Action: s, Where: s, Count: i}}
		e.Checkpoint = &Checkpoint{KeyID: s, Reason: s, Signature: s}
		tcs = append(tcs, tc{"string " + strings.ToValidUTF8(s[:min(len(s), 12)], "?"), e})
	}
	// Every byte value alone, and every rune boundary worth a look.
	var all strings.Builder
	for b := range 256 {
		all.WriteByte(byte(b))
		tcs = append(tcs, tc{"byte " + string(hexDigits[b>>4]) + string(hexDigits[b&0xF]), &Event{Tool: string([]byte{byte(b)}), Reason: "a" + string([]byte{byte(b)}) + "z"}})
	}
	tcs = append(tcs, tc{"all bytes", &Event{Tool: all.String()}})
	for _, r := range []rune{0x7f, 0x80, 0x7ff, 0x800, 0xfffd, 0xffff, 0x10000, 0x10ffff, 0x2027, 0x2028, 0x2029, 0x202a} {
		tcs = append(tcs, tc{"rune " + string(r), &Event{Tool: string(r)}})
	}
	for _, f := range []float64{
		1, -1, 0.5, 12.345, 1234.5678, 1e-6, 9.99e-7, 1e-7, -1e-7, 1.5e-10, 5e-324, math.SmallestNonzeroFloat64,
		1e20, 99999999999999999999, 1e21, -1e21, 1.2345e22, 1e100, 1e-100, math.MaxFloat64, -math.MaxFloat64,
		0.1 + 0.2, 1.0 / 3, 123456789.123456789, 1e-5, 0.000001, 1e15, 1e16, 2e-308,
	} {
		tcs = append(tcs, tc{"float " + string(appendJSONFloat(nil, f)), &Event{LatencyMS: f, UpstreamMS: -f}})
	}
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, 0).UTC(),
		time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 100, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 120000000, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 1, time.FixedZone("X", 3600)),
		time.Date(2030, 1, 2, 3, 4, 5, 1, time.FixedZone("Y", -(5*3600+30*60))),
		time.Date(2030, 1, 2, 3, 4, 5, 1, time.FixedZone("Z", 23*3600+59*60)),
		time.Date(2030, 1, 2, 3, 4, 5, 1, time.FixedZone("S", 45)), // seconds in the offset
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2030, 6, 1, 12, 0, 0, 0, time.Local),
		time.Now(), // with a monotonic reading
		time.Now().In(time.FixedZone("", -3600)),
	} {
		tcs = append(tcs, tc{"time " + tm.String(), &Event{Time: tm}})
	}
	for _, raw := range []string{
		`{}`, `[]`, `null`, `true`, `0`, `-1.5e+10`, `"s"`,
		" \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } } \n",
		`{"html":"<b>&amp;</b>","ls":"` + "\u2028\u2029" + `","esc":"\"\\\/\b\f\n\r\t\u0041\u2028"}`,
		`"` + "\xff\xfe invalid utf8 kept" + `"`,
		`"a\\"`, `["\\\"", " <&> "]`,
		`123   `, `   "x"`,
	} {
		tcs = append(tcs, tc{"arguments " + raw, &Event{Arguments: json.RawMessage(raw)}})
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.e)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			got, err := appendEventJSON(nil, tc.e)
			if err != nil {
				t.Fatalf("appendEventJSON: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
			prefix := []byte("prefix:")
			got, err = appendEventJSON(prefix, tc.e)
			if err != nil || !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("appending to a prefix: %v\n got %s", err, got)
			}
			if tc.e.Kind != KindCheckpoint && tc.e.Checkpoint == nil {
				assertBodyMatches(t, tc.e)
			}
		})
	}
}

// assertBodyMatches checks that the line a chain writes for e is
// json.Marshal's.
func assertBodyMatches(t *testing.T, e *Event) {
	t.Helper()
	body, err := encodeBody(e)
	if err != nil {
		t.Fatalf("encodeBody: %v", err)
	}
	c := newChain()
	line, seq, prev := c.appendRecord(nil, body)
	ev := *e
	ev.Seq, ev.Prev = seq, prev
	want, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(line, append(want, '\n')) {
		t.Fatalf("chained line\n got %s\nwant %s", line, want)
	}
}

// TestAppendJSONStringEveryByteEverywhere puts every byte value, and
// every two-byte pair with a special byte, at every offset of strings
// long enough for the 8-bytes-at-once path.
func TestAppendJSONStringEveryByteEverywhere(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q)\n got %s\nwant %s", s, got, want)
		}
	}
	for _, n := range []int{7, 8, 9, 16, 17, 24} {
		for pos := range n {
			for b := range 256 {
				s := []byte(strings.Repeat("a", n))
				s[pos] = byte(b)
				check(string(s))
			}
			for _, r := range []string{"\u2028", "\u2029", "é", "😀", "\xe2\x80", "\xf0\x9f\x98"} {
				s := strings.Repeat("a", pos) + r + strings.Repeat("b", n)
				check(s)
			}
		}
	}
}

func TestAppendEventJSONRefusesWhatMarshalRefuses(t *testing.T) {
	secretArg := "sk-" + strings.Repeat("q7", 8)
	tcs := []struct {
		name string
		e    *Event
		want error
	}{
		{"NaN latency", &Event{LatencyMS: math.NaN()}, errFloatNotJSON},
		{"+Inf latency", &Event{LatencyMS: math.Inf(1)}, errFloatNotJSON},
		{"-Inf upstream", &Event{UpstreamMS: math.Inf(-1)}, errFloatNotJSON},
		{"year 10000", &Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, errTimeYear},
		{"year -1", &Event{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, errTimeYear},
		{"zone +24:00", &Event{Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}, errTimeZone},
		{"zone -100:00", &Event{Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.FixedZone("", -100*3600))}, errTimeZone},
		{"arguments truncated", &Event{Arguments: json.RawMessage(`{"key":"` + secretArg)}, errArgsNotJSON},
		{"arguments bare word", &Event{Arguments: json.RawMessage(secretArg)}, errArgsNotJSON},
		{"arguments two values", &Event{Arguments: json.RawMessage(`{} {}`)}, errArgsNotJSON},
		{"arguments whitespace only", &Event{Arguments: json.RawMessage(" \n")}, errArgsNotJSON},
		{"arguments control char in string", &Event{Arguments: json.RawMessage("\"a\nb\"")}, errArgsNotJSON},
		{"arguments too deep", &Event{Arguments: json.RawMessage(strings.Repeat("[", 10001) + strings.Repeat("]", 10001))}, errArgsNotJSON},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := json.Marshal(tc.e); err == nil {
				t.Fatal("json.Marshal accepts it: the case is wrong")
			}
			prefix := []byte("keep")
			got, err := appendEventJSON(prefix, tc.e)
			if !errors.Is(err, tc.want) {
				t.Fatalf("appendEventJSON error = %v, want %v", err, tc.want)
			}
			if string(got) != "keep" {
				t.Fatalf("dst = %q after an error, want it unchanged", got)
			}
			body, err := encodeBody(tc.e)
			if !errors.Is(err, tc.want) || body != nil {
				t.Fatalf("encodeBody = %q, %v; want %v", body, err, tc.want)
			}
			if strings.Contains(err.Error(), secretArg) || strings.Contains(err.Error(), "q7q7") {
				t.Fatalf("error quotes the arguments: %v", err)
			}
		})
	}
}

func TestEncodeBodyDoesNotShareItsBuffer(t *testing.T) {
	a, err := encodeBody(event(1))
	if err != nil {
		t.Fatal(err)
	}
	keep := string(a)
	for i := range 100 {
		e := event(i)
		e.Reason = strings.Repeat("x", i*50)
		if _, err := encodeBody(e); err != nil {
			t.Fatal(err)
		}
	}
	if string(a) != keep {
		t.Fatal("a later encodeBody overwrote an earlier body")
	}
}

func TestEncodeBodyAllocatesOnlyTheBody(t *testing.T) {
	e := event(1) // a usual record: under the 1 KiB encodeBody starts with
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := encodeBody(e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("encodeBody allocates %v times per record, want 1 (the body)", allocs)
	}
	e = fullEvent()
	e.Checkpoint = nil
	buf := make([]byte, 0, 4096)
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := appendEventJSON(buf[:0], e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("appendEventJSON into a large enough buffer allocates %v times, want 0", allocs)
	}
}

// FuzzAppendEventJSON builds an Event from the fuzzer's values and checks
// that appendEventJSON and encodeBody give json.Marshal's bytes, or fail
// where it fails.
func FuzzAppendEventJSON(f *testing.F) {
	f.Add("req|docs|<b>&\u2028|\xff\xfe|😀|\"\\\n\t\x00", []byte(` {"a" : [1, "<x>"]} `), uint64(1), int64(200), 12.345, 0.001, int64(1893553445), int64(123456789), 3600, uint64(math.MaxUint64))
	f.Add("", []byte(nil), uint64(0), int64(0), 0.0, 0.0, int64(0), int64(0), 0, uint64(0))
	f.Add("a|b|c", []byte(`{"a":`), uint64(7), int64(-1), math.NaN(), 1e21, int64(-62135596800), int64(0), 86400, uint64(0x5555555555555555))
	f.Add("x", []byte("\"\xe2\x80\xa8\""), uint64(3), int64(1), 1e-7, -1e-7, int64(253402300800), int64(1), -1, uint64(0xaaaaaaaaaaaaaaaa))
	f.Fuzz(func(t *testing.T, strs string, args []byte, seq uint64, n int64, f1, f2 float64, sec, nsec int64, offset int, mask uint64) {
		e := fuzzEvent(strs, args, seq, n, f1, f2, sec, nsec, offset, mask)
		want, werr := json.Marshal(&e)
		got, gerr := appendEventJSON([]byte("p"), &e)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("json.Marshal error %v, appendEventJSON error %v", werr, gerr)
		}
		if werr != nil {
			if string(got) != "p" {
				t.Fatalf("dst changed on error: %q", got)
			}
			return
		}
		if !bytes.Equal(got[1:], want) || got[0] != 'p' {
			t.Fatalf("\n got %q\nwant %q", got[1:], want)
		}
		if e.Kind == KindCheckpoint || e.Checkpoint != nil {
			return
		}
		body, err := encodeBody(&e)
		if err != nil {
			if len(want) > MaxRecordBytes-lineOverhead && errors.Is(err, ErrRecordTooLarge) {
				return
			}
			t.Fatalf("encodeBody: %v", err)
		}
		e.Seq, e.Prev = 0, ""
		want, _ = json.Marshal(&e)
		if !bytes.Equal(append([]byte(`{"seq":0,"prev":""`), body...), want) {
			t.Fatalf("encodeBody\n got %q\nwant %q", body, want)
		}
	})
}

// fuzzEvent spreads the fuzzer's values over an Event's fields: strs
// split at '|' fills the strings and slices (mask says which are set),
// args the arguments, the numbers the numbers and the time.
func fuzzEvent(strs string, args []byte, seq uint64, n int64, f1, f2 float64, sec, nsec int64, offset int, mask uint64) Event {
	parts := strings.Split(strs, "|")
	bit := func(i uint) bool { return mask&(1<<(i%64)) != 0 }
	k := 0
	next := func() string { s := parts[k%len(parts)]; k++; return s }
	str := func(i uint) string {
		if !bit(i) {
			return ""
		}
		return next()
	}
	list := func(i uint) []string {
		switch {
		case !bit(i):
			return nil
		case !bit(i + 1):
			return []string{}
		}
		var l []string
		for range 1 + int(mask>>(i%60))&3 {
			l = append(l, next())
		}
		return l
	}
	e := Event{
		Seq: seq, Prev: str(0), Kind: Kind(str(1)), RequestID: str(2), Route: str(3), Upstream: str(4),
		RemoteIP: str(5), HTTPMethod: str(6), ProtocolVersion: str(7), Session: str(8), Issuer: str(9),
		Subject: str(10), ClientID: str(11), Actor: list(12), Token: str(14), Scopes: list(15),
		Method: str(17), RPCID: str(18), Tool: str(19), Prompt: str(20), Resource: str(21), ArgsDigest: str(22),
		Decision: str(23), Rule: str(24), Labels: list(25), Reason: str(27), RequiredScopes: list(28),
		CredentialMode: str(30), CredentialID: str(31), Anomalies: list(32),
		LatencyMS: f1, UpstreamMS: f2,
	}
	if bit(34) {
		e.Arguments = args
	}
	if bit(35) {
		e.Status, e.UpstreamStatus, e.Filtered = int(n), int(n>>8), int(n>>16)
	}
	if bit(36) {
		e.Bytes = n
	}
	if bit(37) {
		for i := range 1 + int(mask>>38)&3 {
			e.Findings = append(e.Findings, Finding{Detector: next(), Action: next(), Where: next(), Count: int(n) + i})
		}
	}
	if bit(40) {
		e.Checkpoint = &Checkpoint{KeyID: next(), Reason: next(), Signature: next()}
	}
	switch mask >> 41 & 3 {
	case 0: // zero time
	case 1:
		e.Time = time.Unix(sec, nsec).UTC()
	case 2:
		e.Time = time.Unix(sec, nsec).In(time.FixedZone("", offset))
	case 3:
		e.Time = time.Unix(sec%(1<<34), nsec).In(time.FixedZone("", offset%(24*3600)))
	}
	return e
}

// BenchmarkEncodeEvent compares json.Marshal with appendEventJSON (into a
// reused buffer) and encodeBody (what a sink's Write runs) on a typical
// decision record.
func BenchmarkEncodeEvent(b *testing.B) {
	e := event(1)
	e.Seq, e.Prev = 12345, strings.Repeat("ab", 32)
	e.LatencyMS, e.Status, e.HTTPMethod, e.RemoteIP = 1.234, 200, "POST", "192.0.2.10"
	e.Issuer, e.RPCID, e.ProtocolVersion = "https://idp.example.com", "42", "2025-06-18"
	e.ArgsDigest = strings.Repeat("0f", 32)
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendEventJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendEventJSON(buf[:0], e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodeBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeBody(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	withArgs := *e
	withArgs.Arguments = json.RawMessage(`{"path": "/docs/readme.md", "max_bytes": 65536, "query": "a <b> & c"}`)
	b.Run("encodeBody/arguments", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeBody(&withArgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal/arguments", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&withArgs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEncoderCoversEveryField: every field of Event (and Finding and
// Checkpoint), set by reflection, is encoded as json.Marshal does — a
// field added to the struct but not to the encoder fails here.
func TestEncoderCoversEveryField(t *testing.T) {
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			v.SetString("v<" + v.Type().Name() + ">")
		case reflect.Int, reflect.Int64, reflect.Int32:
			v.SetInt(7)
		case reflect.Uint, reflect.Uint64, reflect.Uint32:
			v.SetUint(9)
		case reflect.Float64:
			v.SetFloat(1.25)
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Slice:
			if v.Type() == reflect.TypeFor[json.RawMessage]() {
				v.SetBytes([]byte(`{"a": [1, "<b>"]}`))
				return
			}
			s := reflect.MakeSlice(v.Type(), 2, 2)
			for i := range 2 {
				fill(s.Index(i))
			}
			v.Set(s)
		case reflect.Pointer:
			p := reflect.New(v.Type().Elem())
			fill(p.Elem())
			v.Set(p)
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				v.Set(reflect.ValueOf(time.Date(2026, 11, 26, 5, 4, 3, 210, time.UTC)))
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					fill(v.Field(i))
				}
			}
		default:
			t.Fatalf("field of kind %s: teach this test (and the encoder) about it", v.Kind())
		}
	}
	var e Event
	fill(reflect.ValueOf(&e).Elem())
	want, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendEventJSON(nil, &e)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("appendEventJSON:\n%s\njson.Marshal:\n%s\n(%v)", got, want, err)
	}
}
