package jsonrpc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// typicalCall is a representative ~250-byte tools/call body.
const typicalCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_documents",` +
	`"arguments":{"query":"quarterly revenue report","project":"finance","limit":10,"include_archived":false},` +
	`"_meta":{"progressToken":"c2f1a7e0-5b7e-4a55-9d1e-3f6b2c8a9e11"}}}`

// msgView is Message with byte slices as strings, for cmp.
type msgView struct {
	Kind                  Kind
	ID                    string
	Method                string
	Params, Result, Error string
}

func view(m *Message) msgView {
	return msgView{m.Kind, m.ID.String(), m.Method, string(m.Params), string(m.Result), string(m.Error)}
}

type acceptCase struct {
	name string
	in   string
	lim  Limits
	want msgView
}

func acceptCases() []acceptCase {
	return []acceptCase{
		{name: "typical tools/call", in: typicalCall, want: msgView{
			Kind: KindRequest, ID: "42", Method: "tools/call",
			Params: typicalCall[strings.Index(typicalCall, `{"name"`) : len(typicalCall)-1]}},
		{name: "notification without params", in: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			want: msgView{Kind: KindNotification, Method: "notifications/initialized"}},
		{name: "notification with params", in: `{"method":"notifications/cancelled","params":{"requestId":3},"jsonrpc":"2.0"}`,
			want: msgView{Kind: KindNotification, Method: "notifications/cancelled", Params: `{"requestId":3}`}},
		{name: "members in any order and whitespace", in: " \t\r\n{ \"id\" : \"a\" ,\n\"method\":\"ping\" , \"jsonrpc\" : \"2.0\" }\n ",
			want: msgView{Kind: KindRequest, ID: `"a"`, Method: "ping"}},
		{name: "empty params", in: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`,
			want: msgView{Kind: KindRequest, ID: "1", Method: "tools/list", Params: `{}`}},
		{name: "unknown method kept", in: `{"jsonrpc":"2.0","id":1,"method":"x/y"}`,
			want: msgView{Kind: KindRequest, ID: "1", Method: "x/y"}},
		{name: "escaped method name and value", in: `{"jsonrpc":"2.0","id":1,"\u006dethod":"tools\/c\u0061ll"}`,
			want: msgView{Kind: KindRequest, ID: "1", Method: "tools/call"}},
		{name: "escaped jsonrpc value", in: `{"jsonrpc":"2\u002e0","id":1,"method":"ping"}`,
			want: msgView{Kind: KindRequest, ID: "1", Method: "ping"}},
		{name: "result", in: `{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`,
			want: msgView{Kind: KindResult, ID: "7", Result: `{"content":[]}`}},
		{name: "result null", in: `{"jsonrpc":"2.0","id":7,"result":null}`,
			want: msgView{Kind: KindResult, ID: "7", Result: `null`}},
		{name: "error with null id", in: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
			want: msgView{Kind: KindError, Error: `{"code":-32700,"message":"parse error"}`}},
		{name: "error with id and data", in: `{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"","data":{"a":[1]}}}`,
			want: msgView{Kind: KindError, ID: `"x"`, Error: `{"code":1,"message":"","data":{"a":[1]}}`}},
		{name: "id zero", in: `{"jsonrpc":"2.0","id":0,"method":"ping"}`, want: msgView{Kind: KindRequest, ID: "0", Method: "ping"}},
		{name: "id max safe integer", in: `{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"}`,
			want: msgView{Kind: KindRequest, ID: "9007199254740991", Method: "ping"}},
		{name: "id min safe integer", in: `{"jsonrpc":"2.0","id":-9007199254740991,"method":"ping"}`,
			want: msgView{Kind: KindRequest, ID: "-9007199254740991", Method: "ping"}},
		{name: "id 15 digits", in: `{"jsonrpc":"2.0","id":999999999999999,"method":"ping"}`,
			want: msgView{Kind: KindRequest, ID: "999999999999999", Method: "ping"}},
		{name: "id escaped string kept verbatim", in: `{"jsonrpc":"2.0","id":"a\u0062","method":"ping"}`,
			want: msgView{Kind: KindRequest, ID: `"a\u0062"`, Method: "ping"}},
		{name: "names differing by accent", in: `{"jsonrpc":"2.0","method":"n","params":{"a":1,"á":2,"A\u0301":3}}`,
			want: msgView{Kind: KindNotification, Method: "n", Params: `{"a":1,"á":2,"A\u0301":3}`}},
		{name: "sharp s and ss are not simple-fold equal", in: `{"jsonrpc":"2.0","method":"n","params":{"ß":1,"ss":2}}`,
			want: msgView{Kind: KindNotification, Method: "n", Params: `{"ß":1,"ss":2}`}},
		{name: "same name in sibling objects", in: `{"jsonrpc":"2.0","method":"n","params":{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"X":2}]}}`,
			want: msgView{Kind: KindNotification, Method: "n", Params: `{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"X":2}]}`}},
		{name: "same name at different depths", in: `{"jsonrpc":"2.0","method":"n","params":{"method":{"method":1}}}`,
			want: msgView{Kind: KindNotification, Method: "n", Params: `{"method":{"method":1}}`}},
		{name: "all value kinds", in: `{"jsonrpc":"2.0","method":"n","params":{"a":[true,false,null,-0.5e+10,1E-2,0,"\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t",{}],"b":"\u0000"}}`,
			want: msgView{Kind: KindNotification, Method: "n", Params: `{"a":[true,false,null,-0.5e+10,1E-2,0,"\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t",{}],"b":"\u0000"}`}},
		{name: "raw UTF-8 and U+FFFD", in: "{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":{\"é😀\":\"\uFFFD\"}}",
			want: msgView{Kind: KindNotification, Method: "n", Params: "{\"é😀\":\"\uFFFD\"}"}},
		{name: "depth exactly at cap", in: `{"jsonrpc":"2.0","method":"n","params":{"a":[{}]}}`, lim: Limits{MaxDepth: 4},
			want: msgView{Kind: KindNotification, Method: "n", Params: `{"a":[{}]}`}},
		{name: "default depth 64", in: nested(64), want: msgView{Kind: KindNotification, Method: "n", Params: nested(64)[len(`{"jsonrpc":"2.0","method":"n","params":`) : len(nested(64))-1]}},
		{name: "many distinct keys", in: wideParams(1000, ""),
			want: msgView{Kind: KindNotification, Method: "n", Params: wideParams(1000, "")[len(`{"jsonrpc":"2.0","method":"n","params":`) : len(wideParams(1000, ""))-1]}},
	}
}

// nested returns a notification whose params nest objects to depth
// total (the top-level object counting as 1).
func nested(total int) string {
	inner := strings.Repeat(`{"a":`, total-1) + "1" + strings.Repeat("}", total-1)
	return `{"jsonrpc":"2.0","method":"n","params":` + inner + `}`
}

// wideParams returns a notification whose params has n keys k0…k(n-1),
// followed by extra (a raw `,"name":value` fragment) if not empty.
func wideParams(n int, extra string) string {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","method":"n","params":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString(extra)
	b.WriteString(`}}`)
	return b.String()
}

func TestDecodeAccepts(t *testing.T) {
	for _, tt := range acceptCases() {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in), tt.lim)
			if err != nil {
				t.Fatalf("Decode(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, view(m)); diff != "" {
				t.Errorf("Decode(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

type rejectCase struct {
	name string
	in   string
	lim  Limits
	code int
	msg  string // substring of Error.Message
}

const (
	parse   = CodeParseError
	invalid = CodeInvalidRequest
)

func rejectCases() []rejectCase {
	req := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
	}
	withID := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"method":"ping"}` }
	errResp := func(e string) string { return `{"jsonrpc":"2.0","id":1,"error":` + e + `}` }
	return []rejectCase{
		// Malformed JSON.
		{"empty body", ``, Limits{}, parse, "empty body"},
		{"only whitespace", " \n\t", Limits{}, parse, "empty body"},
		{"unterminated object", `{"jsonrpc":"2.0"`, Limits{}, parse, ""},
		{"unterminated string", `{"jsonrpc":"2.0`, Limits{}, parse, "unterminated string"},
		{"trailing garbage", `{"jsonrpc":"2.0","method":"n"} x`, Limits{}, parse, "data after the JSON value"},
		{"two objects", `{"jsonrpc":"2.0","method":"n"}{"jsonrpc":"2.0","method":"n"}`, Limits{}, parse, "data after"},
		{"trailing NUL", "{\"jsonrpc\":\"2.0\",\"method\":\"n\"}\x00", Limits{}, parse, "data after"},
		{"byte order mark", "\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"method\":\"n\"}", Limits{}, parse, "expected a value"},
		{"invalid UTF-8 in value", req("{\"name\":\"a\xffb\"}"), Limits{}, parse, "invalid UTF-8"},
		{"invalid UTF-8 in name", req("{\"na\xc3me\":1}"), Limits{}, parse, "invalid UTF-8"},
		{"overlong UTF-8", req("{\"name\":\"\xc0\xaf\"}"), Limits{}, parse, "invalid UTF-8"},
		{"UTF-8 encoded surrogate", req("{\"name\":\"\xed\xa0\x80\"}"), Limits{}, parse, "invalid UTF-8"},
		{"truncated UTF-8 at end", "{\"jsonrpc\":\"2.0\",\"method\":\"\xe2\x82", Limits{}, parse, ""},
		{"invalid UTF-8 outside strings", "{\"jsonrpc\":\"2.0\",\"method\":\"n\"\xff}", Limits{}, parse, "(byte 0xff)"},
		{"lone high surrogate", req(`{"name":"\ud800"}`), Limits{}, parse, "unpaired surrogate"},
		{"lone low surrogate", req(`{"name":"\udc00x"}`), Limits{}, parse, "unpaired surrogate"},
		{"high surrogate then non-surrogate", req(`{"name":"\ud800\u0041"}`), Limits{}, parse, "unpaired surrogate"},
		{"reversed surrogate pair", req(`{"name":"\ude00\ud83d"}`), Limits{}, parse, "unpaired surrogate"},
		{"lone surrogate in name", req(`{"\udbff":1}`), Limits{}, parse, "unpaired surrogate"},
		{"raw tab in string", "{\"jsonrpc\":\"2.0\",\"method\":\"a\tb\"}", Limits{}, parse, "control character"},
		{"raw newline in name", "{\"json\nrpc\":\"2.0\"}", Limits{}, parse, "control character"},
		{"bad escape", req(`{"name":"\x41"}`), Limits{}, parse, "invalid escape"},
		{"short unicode escape", req(`{"name":"\u12"}`), Limits{}, parse, `invalid \u escape`},
		{"non-hex unicode escape", req(`{"name":"\u12g4"}`), Limits{}, parse, `invalid \u escape`},
		{"leading zero", req(`{"n":01}`), Limits{}, parse, ""},
		{"minus only", req(`{"n":-}`), Limits{}, parse, "invalid number"},
		{"dot without digits", req(`{"n":1.}`), Limits{}, parse, "invalid number"},
		{"leading dot", req(`{"n":.5}`), Limits{}, parse, ""},
		{"exponent without digits", req(`{"n":1e+}`), Limits{}, parse, "invalid number"},
		{"plus sign", req(`{"n":+1}`), Limits{}, parse, ""},
		{"hex number", req(`{"n":0x10}`), Limits{}, parse, ""},
		{"NaN", req(`{"n":NaN}`), Limits{}, parse, ""},
		{"Infinity", req(`{"n":-Infinity}`), Limits{}, parse, ""},
		{"bad literal", req(`{"n":tru}`), Limits{}, parse, "invalid literal"},
		{"capitalised literal", req(`{"n":True}`), Limits{}, parse, ""},
		{"single quotes", `{'jsonrpc':'2.0'}`, Limits{}, parse, "expected a member name"},
		{"trailing comma in object", req(`{"n":1,}`), Limits{}, parse, "expected a member name"},
		{"trailing comma in array", req(`{"n":[1,]}`), Limits{}, parse, "expected a value"},
		{"missing colon", `{"jsonrpc" "2.0"}`, Limits{}, parse, "expected ':'"},
		{"missing comma", `{"jsonrpc":"2.0" "method":"n"}`, Limits{}, parse, "expected ',' or '}'"},
		{"comment", `{"jsonrpc":"2.0", // c` + "\n" + `"method":"n"}`, Limits{}, parse, ""},
		{"unquoted name", `{jsonrpc:"2.0"}`, Limits{}, parse, "expected a member name"},
		{"duplicate then syntax error", `{"id":1,"id":2,`, Limits{}, parse, ""},
		{"batch with syntax error", `[{"jsonrpc":"2.0","method":"n"},`, Limits{}, parse, ""},

		// Not a single object.
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, Limits{}, invalid, "batch requests are not supported"},
		{"empty batch", ` [] `, Limits{}, invalid, "batch requests are not supported"},
		{"top-level string", `"x"`, Limits{}, invalid, "must be a JSON object"},
		{"top-level number", `1`, Limits{}, invalid, "must be a JSON object"},
		{"top-level null", `null`, Limits{}, invalid, "must be a JSON object"},

		// Depth.
		{"deeper than default 64", nested(65), Limits{}, invalid, "nesting deeper than 64"},
		{"deeper than custom cap", `{"jsonrpc":"2.0","method":"n","params":{"a":[{}]}}`, Limits{MaxDepth: 3}, invalid, "nesting deeper than 3"},
		{"cap 1 forbids params", `{"jsonrpc":"2.0","method":"n","params":{}}`, Limits{MaxDepth: 1}, invalid, "nesting deeper than 1"},
		{"deep batch", strings.Repeat("[", 100) + strings.Repeat("]", 100), Limits{}, invalid, "nesting deeper than 64"},

		// Duplicate and case-variant names.
		{"duplicate top-level id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, Limits{}, invalid, `duplicate or case-variant member name "id"`},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, Limits{}, invalid, `"method"`},
		{"case-variant method", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, Limits{}, invalid, `"Method"`},
		{"escaped duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","\u006dethod":"tools/call"}`, Limits{}, invalid, `"method"`},
		{"escaped case variant", `{"jsonrpc":"2.0","id":1,"method":"ping","\u004dETHOD":"x"}`, Limits{}, invalid, `"METHOD"`},
		{"case-variant tool name", req(`{"name":"safe","Name":"evil"}`), Limits{}, invalid, `"Name"`},
		{"duplicate tool name", req(`{"name":"safe","name":"evil"}`), Limits{}, invalid, `"name"`},
		{"case variant in arguments", req(`{"name":"t","arguments":{"path":"/tmp","PATH":"/etc"}}`), Limits{}, invalid, `"PATH"`},
		{"case variant deep in arguments", req(`{"name":"t","arguments":{"a":[1,{"b":{"to":"x","tO":"y"}}]}}`), Limits{}, invalid, `"tO"`},
		{"duplicate in array element", req(`{"items":[{"x":1},{"x":1,"x":2}]}`), Limits{}, invalid, `"x"`},
		{"Kelvin sign folds to k", req("{\"k\":1,\"\u212a\":2}"), Limits{}, invalid, `"\u212a"`},
		{"long s folds to s", req("{\"S\":1,\"\u017f\":2}"), Limits{}, invalid, `"\u017f"`},
		{"non-ASCII case variant", req(`{"ÉTÉ":1,"été":2}`), Limits{}, invalid, `"\u00e9t\u00e9"`},
		{"Greek case orbit", req("{\"\u03b8\":1,\"\u03d1\":2}"), Limits{}, invalid, "duplicate"},
		{"empty names", req(`{"":1,"":2}`), Limits{}, invalid, `""`},
		{"case variant in error object", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","Code":2}}`, Limits{}, invalid, `"Code"`},
		{"duplicate after 16 keys (hash set)", wideParams(40, `,"K7":1`), Limits{}, invalid, `"K7"`},
		{"escaped duplicate after 16 keys", wideParams(40, `,"\u006b39":1`), Limits{}, invalid, `"k39"`},
		{"duplicate at 1000 keys", wideParams(1000, `,"K0":1`), Limits{}, invalid, `"K0"`},

		// Envelope.
		{"Method alone", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, Limits{}, invalid, `unknown top-level member "Method"`},
		{"unknown top-level member", `{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}`, Limits{}, invalid, `unknown top-level member "extra"`},
		{"JSONRPC case", `{"JSONRPC":"2.0","id":1,"method":"ping"}`, Limits{}, invalid, "unknown top-level member"},
		{"missing jsonrpc", `{"id":1,"method":"ping"}`, Limits{}, invalid, `missing "jsonrpc"`},
		{"empty object", `{}`, Limits{}, invalid, `missing "jsonrpc"`},
		{"jsonrpc with space", `{"jsonrpc":"2.0 ","id":1,"method":"ping"}`, Limits{}, invalid, `"jsonrpc" must be "2.0"`},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, Limits{}, invalid, `"jsonrpc" must be "2.0"`},
		{"jsonrpc number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, Limits{}, invalid, `"jsonrpc" must be "2.0"`},
		{"jsonrpc null", `{"jsonrpc":null,"id":1,"method":"ping"}`, Limits{}, invalid, `"jsonrpc" must be "2.0"`},
		{"empty method", `{"jsonrpc":"2.0","id":1,"method":""}`, Limits{}, invalid, `"method" must be a non-empty string`},
		{"method number", `{"jsonrpc":"2.0","id":1,"method":1}`, Limits{}, invalid, `"method" must be a non-empty string`},
		{"method null", `{"jsonrpc":"2.0","id":1,"method":null}`, Limits{}, invalid, `"method" must be a non-empty string`},
		{"params array", req(`["safe"]`), Limits{}, invalid, `"params" must be an object`},
		{"params string", req(`"x"`), Limits{}, invalid, `"params" must be an object`},
		{"params null", req(`null`), Limits{}, invalid, `"params" must be an object`},
		{"params without method", `{"jsonrpc":"2.0","id":1,"result":{},"params":{}}`, Limits{}, invalid, `"params" without "method"`},
		{"method with result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, Limits{}, invalid, `"method" with "result" or "error"`},
		{"method with error", `{"jsonrpc":"2.0","id":1,"method":"ping","error":{"code":1,"message":"m"}}`, Limits{}, invalid, `"method" with "result" or "error"`},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, Limits{}, invalid, `both "result" and "error"`},
		{"nothing but jsonrpc and id", `{"jsonrpc":"2.0","id":1}`, Limits{}, invalid, `missing "method", "result" or "error"`},
		{"result without id", `{"jsonrpc":"2.0","result":{}}`, Limits{}, invalid, `missing "id"`},
		{"error without id", `{"jsonrpc":"2.0","error":{"code":1,"message":"m"}}`, Limits{}, invalid, `missing "id"`},
		{"result with null id", `{"jsonrpc":"2.0","id":null,"result":{}}`, Limits{}, invalid, `"id" must be a string or an integer`},
		{"error not an object", errResp(`"boom"`), Limits{}, invalid, `"error" must be an object`},
		{"error without code", errResp(`{"message":"m"}`), Limits{}, invalid, `"error.code" must be an integer`},
		{"error code string", errResp(`{"code":"1","message":"m"}`), Limits{}, invalid, `"error.code" must be an integer`},
		{"error code fraction", errResp(`{"code":1.5,"message":"m"}`), Limits{}, invalid, `"error.code" must be an integer`},
		{"error code too big", errResp(`{"code":9223372036854775808,"message":"m"}`), Limits{}, invalid, `"error.code" must be an integer`},
		{"error without message", errResp(`{"code":1}`), Limits{}, invalid, `"error.message" must be a string`},
		{"error message number", errResp(`{"code":1,"message":2}`), Limits{}, invalid, `"error.message" must be a string`},

		// Ids.
		{"null id on request", withID(`null`), Limits{}, invalid, `"id" must be a string or an integer`},
		{"fractional id", withID(`1.0`), Limits{}, invalid, `"id" must be`},
		{"exponent id", withID(`1e3`), Limits{}, invalid, `"id" must be`},
		{"negative zero id", withID(`-0`), Limits{}, invalid, `"id" must be`},
		{"boolean id", withID(`true`), Limits{}, invalid, `"id" must be`},
		{"object id", withID(`{}`), Limits{}, invalid, `"id" must be`},
		{"array id", withID(`[1]`), Limits{}, invalid, `"id" must be`},
		{"id above 2^53-1 (rounded by doubles)", withID(`9007199254740993`), Limits{}, invalid, `"id" must be`},
		{"id just above the safe range", withID(`9007199254740992`), Limits{}, invalid, `"id" must be`},
		{"id below -(2^53-1)", withID(`-9007199254740992`), Limits{}, invalid, `"id" must be`},
		{"id above int64", withID(`9223372036854775808`), Limits{}, invalid, `"id" must be`},
		{"20-digit id", withID(`10000000000000000000`), Limits{}, invalid, `"id" must be`},
		{"huge id", withID(strings.Repeat("9", 400)), Limits{}, invalid, `"id" must be`},
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tt := range rejectCases() {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in), tt.lim)
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want error %d", tt.in, view(m), tt.code)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%q) error %T %v is not *Error", tt.in, err, err)
			}
			if e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("Decode(%q) = %d %q, want %d containing %q", tt.in, e.Code, e.Message, tt.code, tt.msg)
			}
			if m != nil {
				t.Errorf("Decode(%q) returned a message with its error", tt.in)
			}
			for _, r := range e.Message { // safe to echo to clients and logs
				if r < 0x20 || r > 0x7e {
					t.Errorf("message %q holds %U", e.Message, r)
				}
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	_, err := Decode([]byte(`[]`), Limits{})
	if !errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrParse) {
		t.Errorf("errors.Is(%v): want ErrInvalidRequest only", err)
	}
	if !errors.Is(fmt.Errorf("inbound: %w", err), &Error{Code: CodeInvalidRequest}) {
		t.Error("wrapped error does not match on code")
	}
	_, err = Decode([]byte(`{`), Limits{})
	if !errors.Is(err, ErrParse) || errors.Is(err, ErrInvalidRequest) {
		t.Errorf("errors.Is(%v): want ErrParse only", err)
	}
	if errors.Is(err, (*Error)(nil)) {
		t.Error("matched a nil *Error")
	}
	if got, want := err.Error(), "jsonrpc -32700: parse error: "; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want prefix %q", got, want)
	}
}

func TestLimitsDefaults(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 64}, {-1, 64}, {1, 1}, {500, 500}, {1 << 30, maxDepthCap}} {
		if got := (Limits{MaxDepth: tt.in}).maxDepth(); got != tt.want {
			t.Errorf("MaxDepth %d → %d, want %d", tt.in, got, tt.want)
		}
	}
	// A cap far above the hard limit still stops recursion.
	deep := strings.Repeat("[", maxDepthCap+1) + strings.Repeat("]", maxDepthCap+1)
	if _, err := Decode([]byte(deep), Limits{MaxDepth: 1 << 30}); !errors.Is(err, ErrInvalidRequest) ||
		!strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("Decode(deep) = %v, want depth error", err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindRequest: "request", KindNotification: "notification",
		KindResult: "result", KindError: "error", 0: "invalid", 99: "invalid"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestMethodInterned(t *testing.T) {
	for _, name := range []string{"tools/call", "notifications/initialized", "subscriptions/listen", "custom/x"} {
		if got := internMethod([]byte(name)); got != name {
			t.Errorf("internMethod(%q) = %q", name, got)
		}
	}
}

// TestTypicalCallAllocs guards the hot path: decoding a typical tools/call
// and reading its tool name allocates only the Message.
func TestTypicalCallAllocs(t *testing.T) {
	data := []byte(typicalCall)
	allocs := testing.AllocsPerRun(200, func() {
		m, err := Decode(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := Lookup(m.Params, "name"); !ok {
			t.Fatal("no name")
		}
		if _, ok := Lookup(m.Params, "arguments"); !ok {
			t.Fatal("no arguments")
		}
	})
	if allocs > 1 {
		t.Errorf("Decode+Lookup allocates %v times per call, want 1", allocs)
	}
}
