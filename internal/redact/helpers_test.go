package redact

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"unicode/utf16"
)

// Fixtures are composed at run time from pieces and random bodies, so
// the repository holds nothing that looks like a live credential.

const (
	upperChars  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerChars  = "abcdefghijklmnopqrstuvwxyz"
	digitChars  = "0123456789"
	alnumChars  = upperChars + lowerChars + digitChars
	b64Chars    = alnumChars + "+/"
	b64urlChars = alnumChars + "-_"
)

func newRand(tb testing.TB) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(tb.Name()))
	return rand.New(rand.NewPCG(h.Sum64(), 0x5ec7e75))
}

func randStr(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// randTok is randStr with at least one digit, one capital and one
// lowercase letter (a random 40-character token nearly always has them;
// this makes the fixtures deterministic in that respect).
func randTok(r *rand.Rand, alphabet string, n int) string {
	b := []byte(randStr(r, alphabet, n))
	b[n/4] = digitChars[r.IntN(10)]
	b[n/2] = upperChars[r.IntN(26)]
	b[3*n/4] = lowerChars[r.IntN(26)]
	return string(b)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// pemBlock is a PEM block of kind ("RSA PRIV"+"ATE KEY", "PUBLIC KEY", …)
// with a random body; it returns the block and its body lines.
func pemBlock(r *rand.Rand, kind string, n int, end bool) (string, []string) {
	body := b64std(randBytes(r, n))
	var lines []string
	for len(body) > 64 {
		lines = append(lines, body[:64])
		body = body[64:]
	}
	lines = append(lines, body)
	s := "-----BEGIN " + kind + "-----\n" + strings.Join(lines, "\n") + "\n"
	if end {
		s += "-----END " + kind + "-----\n"
	}
	return s, lines
}

func privKind(prefix string) string { return prefix + "PRIV" + "ATE KEY" }

func jwtOf(r *rand.Rand, header string, sigLen int) string {
	payload := fmt.Sprintf(`{"sub":"%s","iat":%d,"scope":"repo read"}`, randStr(r, alnumChars, 12), 1700000000+r.IntN(1e6))
	return b64url([]byte(header)) + "." + b64url([]byte(payload)) + "." + b64url(randBytes(r, sigLen))
}

// fixture is a realistic line holding a credential of detector det; the
// secrets must not survive a scan.
type fixture struct {
	det     string
	text    string
	secrets []string
}

func fixtures(r *rand.Rand) []fixture {
	var fs []fixture
	add := func(det, text string, secrets ...string) {
		fs = append(fs, fixture{det, text, secrets})
	}

	j1 := jwtOf(r, `{"alg":"HS256","typ":"JWT"}`, 32)
	add("jwt", "callback?id_token="+j1+"&state=af0ifjsldkj", j1)
	j2 := jwtOf(r, `{"alg":"RS256","kid":"`+randStr(r, alnumChars, 16)+`","typ":"JWT"}`, 256)
	add("jwt", "Authorization: Bearer "+j2, j2)
	jwe := b64url([]byte(`{"alg":"dir","enc":"A256GCM"}`)) + ".." + b64url(randBytes(r, 12)) + "." +
		b64url(randBytes(r, 80)) + "." + b64url(randBytes(r, 16))
	add("jwt", "session cookie: "+jwe+"; Path=/", jwe)

	bt := randTok(r, alnumChars+"-._~", 40)
	add("bearer", "Authorization: Bearer "+bt, bt)
	bt2 := randTok(r, alnumChars+"+/", 43) + "="
	add("bearer", "curl -H 'authorization: bearer "+bt2+"' https://api.example.com/v1/me", bt2)

	pw := randTok(r, alnumChars, 20)
	bc := b64std([]byte("svc-deploy:" + pw))
	add("basic", "Authorization: Basic "+bc, bc)
	pw2 := randTok(r, alnumChars, 14)
	bc2 := b64std([]byte("admin:" + pw2))
	add("basic", "proxy-authorization: basic "+bc2+"\r\n", bc2)

	k1, l1 := pemBlock(r, privKind("RSA "), 600, true)
	add("private_key", "Here is the key you asked for:\n"+k1+"Keep it safe.", l1...)
	k2, l2 := pemBlock(r, privKind("OPENSSH "), 400, true)
	add("private_key", k2, l2...)
	k3, l3 := pemBlock(r, privKind("EC "), 120, false) // truncated: no END line
	add("private_key", "cat id_ec:\n"+k3, l3...)
	k4, l4 := pemBlock(r, privKind("ENCRYPTED "), 300, true)
	add("private_key", "pkcs8: "+k4, l4...)

	ak := "AK" + "IA" + randStr(r, upperChars+digitChars, 16)
	add("aws_access_key", "aws_access_key_id = "+ak, ak)
	ak2 := "AS" + "IA" + randStr(r, upperChars+digitChars, 16)
	add("aws_access_key", "export KEY_"+ak2+" # temporary", ak2)

	sk := randTok(r, b64Chars, 40)
	add("aws_secret_key", "[default]\naws_secret_access_key = "+sk+"\nregion = eu-west-1", sk)
	sk2 := randTok(r, b64Chars, 40)
	add("aws_secret_key", "AWS_SECRET_ACCESS_KEY="+sk2, sk2)
	st := randTok(r, b64Chars, 320)
	add("aws_secret_key", "aws_session_token = "+st, st)

	gk := "AI" + "za" + "Sy" + randTok(r, b64urlChars, 33)
	add("gcp_service_account", "https://maps.googleapis.com/maps/api/geocode/json?address=x&key="+gk, gk)
	kid := hex.EncodeToString(randBytes(r, 20))
	sa, saLines := pemBlock(r, privKind(""), 600, true)
	saJSON, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "acme-prod", "private_key_id": kid,
		"private_key": sa, "client_email": "deployer@acme-prod.iam.gserviceaccount.com",
	})
	add("gcp_service_account", string(saJSON), append([]string{kid}, saLines...)...)
	add("gcp_service_account", "key file contents: "+string(saJSON), append([]string{kid}, saLines...)...)

	ask := b64std(randBytes(r, 64))
	add("azure", "DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey="+ask+";EndpointSuffix=core.windows.net", ask)
	sig := url.QueryEscape(b64std(randBytes(r, 32)))
	add("azure", "https://prodstore.blob.core.windows.net/backups/db.bak?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig="+sig, sig)
	sak := b64std(randBytes(r, 32))
	add("azure", "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey="+sak, sak)

	gh := "gh" + "p_" + randTok(r, alnumChars, 36)
	add("github", "git clone https://x-access-token:"+gh+"@github.com/acme/app.git", gh)
	gh2 := "gh" + "s_" + randTok(r, alnumChars, 36)
	add("github", "GITHUB_TOKEN="+gh2, gh2)
	gh3 := "github_" + "pat_" + randTok(r, alnumChars, 22) + "_" + randTok(r, alnumChars, 59)
	add("github", "token: "+gh3, gh3)

	gl := "gl" + "pat-" + randTok(r, alnumChars+"-_", 20)
	add("gitlab", "PRIVATE-TOKEN: "+gl, gl)
	gl2 := "gl" + "rt-" + randTok(r, alnumChars, 27)
	add("gitlab", "runner token "+gl2+".", gl2)

	sl := "xo" + "xb-" + randStr(r, digitChars, 12) + "-" + randStr(r, digitChars, 13) + "-" + randTok(r, alnumChars, 24)
	add("slack", "SLACK_BOT_TOKEN="+sl, sl)
	wh := "T" + randStr(r, upperChars+digitChars, 8) + "/B" + randStr(r, upperChars+digitChars, 10) + "/" + randTok(r, alnumChars, 24)
	add("slack", "post to https://hooks."+"slack.com/services/"+wh, wh)

	stk := "sk" + "_live_" + randTok(r, alnumChars, 99)
	add("stripe", "stripe.api_key = '"+stk+"'", stk)
	rk := "rk" + "_live_" + randTok(r, alnumChars, 24)
	add("stripe", "restricted: "+rk, rk)
	whs := "wh" + "sec_" + randTok(r, alnumChars, 32)
	add("stripe", "STRIPE_WEBHOOK_SECRET="+whs, whs)

	oa := "sk-" + "proj-" + randTok(r, b64urlChars, 74) + "T3Blbk" + "FJ" + randTok(r, b64urlChars, 74)
	add("openai", "OPENAI_API_KEY="+oa, oa)
	oa2 := "sk-" + randTok(r, alnumChars, 20) + "T3Blbk" + "FJ" + randTok(r, alnumChars, 20)
	add("openai", `client = OpenAI(api_key="`+oa2+`")`, oa2)

	an := "sk-" + "ant-" + "api03-" + randTok(r, b64urlChars, 93) + "AA"
	add("anthropic", "x-api-key: "+an, an)
	an2 := "sk-" + "ant-" + "admin01-" + randTok(r, b64urlChars, 93) + "AA"
	add("anthropic", "ANTHROPIC_ADMIN_KEY="+an2, an2)

	p1 := randTok(r, alnumChars, 18) + "!x"
	add("connection_string", "DATABASE_URL=postgres://app:"+p1+"@db.internal:5432/app?sslmode=require", p1)
	p2 := randTok(r, alnumChars, 24)
	add("connection_string", "mongodb+srv://admin:"+p2+"@cluster0.ab1cd.mongodb.net/?retryWrites=true", p2)
	p3 := randTok(r, alnumChars, 16)
	add("connection_string", "redis://:"+p3+"@cache.internal:6379/0", p3)
	p4 := randTok(r, alnumChars, 16)
	add("connection_string", "amqp://svc:"+p4+"@rabbit.internal:5672/vhost", p4)
	p5 := randTok(r, alnumChars, 16)
	add("connection_string", "Server=tcp:db.example.net,1433;Database=app;User ID=sa;Password="+p5+";Encrypt=true", p5)
	return fs
}

// negatives must survive a scan unchanged and without findings.
func negatives(r *rand.Rand) []string {
	u := randBytes(r, 16)
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	data := randBytes(r, 100)
	s1, s256, s512 := sha1.Sum(data), sha256.Sum256(data), sha512.Sum512(data)
	pub, _ := pemBlock(r, "PUBLIC KEY", 294, true)
	rsaPub, _ := pemBlock(r, "RSA PUBLIC KEY", 270, true)
	cert, _ := pemBlock(r, "CERTIFICATE", 900, true)
	return []string{
		"request " + uuid + " completed",
		"sha1 " + hex.EncodeToString(s1[:]),
		"digest: sha256:" + hex.EncodeToString(s256[:]),
		"sha512sum " + hex.EncodeToString(s512[:]) + "  release.tar.gz",
		strings.ToUpper(hex.EncodeToString(s256[:])),
		"commit " + hex.EncodeToString(s1[:]) + "\nAuthor: Alice <alice@example.com>\n\n    Fix the thing",
		"The payload was " + b64std(randBytes(r, 48)) + " and it decoded fine.",
		"Attachment (base64): " + b64std(randBytes(r, 300)),
		`"integrity": "sha512-` + b64std(s512[:]) + `"`,
		"etag W/\"" + b64url(randBytes(r, 30)) + "\"",
		pub, rsaPub, cert,
		"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + b64std(randBytes(r, 270)) + " deploy@ci",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + b64std(randBytes(r, 32)) + " alice@laptop",
		"clone https://alice@github.com/acme/app.git",
		"postgres://db.internal:5432/app",
		"mongodb://localhost:27017/test",
		"https://example.com:8443/path?q=1&next=/home#frag",
		"http://[::1]:8080/health and mailto:ops@example.com",
		"see https://example.com/a@b for details",
		"task-1234 is done; the risk-adjusted-return-on-capital-for-this-portfolio is fine",
		"sk-", "sk-learn", "task-", "the disk-usage-monitor-for-production-servers-v2 tool",
		"Send the token using the Bearer scheme.",
		"Bearer authentication (also called token authentication) is an HTTP authentication scheme.",
		"A bearer tokenization-strategy-for-everyone",
		"Basic information about basic authentication.",
		"Authorization: Basic realm=\"example\"",
		"pk" + "_live_" + randTok(r, alnumChars, 24),
		"pk" + "_test_" + randTok(r, alnumChars, 24),
		"Set aws_secret_access_key in ~/.aws/credentials.",
		"aws_secret_access_key = " + hex.EncodeToString(s256[:]),
		"AKIA is the prefix of long-term access key IDs",
		"https://cdn.example.com/img.png?w=200&sig=" + randTok(r, alnumChars, 24),
		"hugs and xoxo-from-all-of-us",
		"password := os.Getenv(\"DB_PASSWORD\")\nif password == expected {",
		`db.Open("postgres", "host=localhost user=app dbname=app")`,
		"AccountName=prodstore;EndpointSuffix=core.windows.net",
		"glpat is GitLab's prefix for personal access tokens",
		"The ghp_ prefix marks a classic token.",
		"heyJude.mp3 and eyJ alone",
		`{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search","description":"Search the web. Use https://duckduckgo.com.","inputSchema":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"files","version":"1.4.2"}}}`,
		`{"type":"service_account","project_id":"acme","client_email":"x@acme.iam.gserviceaccount.com"}`,
		`{"path":"C:\\Users\\alice\\notes.txt","pattern":"\\d+\\s*\\w+","n":-1.5e3,"ok":true,"z":null}`,
	}
}

// Embeddings of a text line into JSON.

func jsonQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// uEscapeAll writes s as a JSON string with every character as \uXXXX.
func uEscapeAll(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func toolResult(strTok string) string {
	return `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":` + strTok + `}],"isError":false}}`
}

type embedding struct {
	name  string
	build func(line string) string
}

func embeddings() []embedding {
	return []embedding{
		{"value", func(l string) string { return toolResult(jsonQuote(l)) }},
		{"key", func(l string) string { return `{"params":{"arguments":{` + jsonQuote(l) + `:true}}}` }},
		{"nested", func(l string) string { return `{"a":[1,{"b":[null,{"c":` + jsonQuote(l) + `}]},"x"]}` }},
		{"u-escaped", func(l string) string { return toolResult(uEscapeAll(l)) }},
		{"escaped-slashes", func(l string) string {
			return toolResult(strings.ReplaceAll(jsonQuote(l), "/", `\/`))
		}},
		{"json-in-string", func(l string) string {
			return toolResult(jsonQuote(`{"note":` + jsonQuote(l) + `,"n":1}`))
		}},
		{"json-in-string-u-escaped", func(l string) string {
			return toolResult(jsonQuote(`[{"note":` + uEscapeAll(l) + `}]`))
		}},
		{"escaped-json-in-prose", func(l string) string {
			return toolResult(jsonQuote(`request body: {"note":` + uEscapeAll(l) + `} (end)`))
		}},
	}
}

// texts returns every string (and member name) in a JSON document,
// recursively decoding strings that are JSON or hold escapes, to depth 4.
func texts(tb testing.TB, doc []byte) []string {
	tb.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		tb.Fatalf("not valid JSON: %v", err)
	}
	var out []string
	var walk func(v any, depth int)
	var str func(s string, depth int)
	str = func(s string, depth int) {
		out = append(out, s)
		if depth >= 4 {
			return
		}
		var inner any
		if json.Unmarshal([]byte(s), &inner) == nil {
			walk(inner, depth+1)
		}
		if u, ok := looseUnescape([]byte(s)); ok {
			str(string(u), depth+1)
		}
	}
	walk = func(v any, depth int) {
		switch x := v.(type) {
		case string:
			str(x, depth)
		case []any:
			for _, e := range x {
				walk(e, depth)
			}
		case map[string]any:
			for k, e := range x {
				str(k, depth)
				walk(e, depth)
			}
		}
	}
	walk(v, 0)
	return out
}

func finding(r Result, det string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Detector == det {
			return f, true
		}
	}
	return Finding{}, false
}

func mustNew(tb testing.TB, c Config) *Scanner {
	tb.Helper()
	s, err := New(c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// sameSlice reports whether a and b share their first byte (the
// "unchanged input is returned as is" contract).
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
