package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sdkTool renders a tool the way go-sdk v1.8.0 marshals one: members in
// alphabetical order, name last, a nested "name" inside the schema.
func sdkTool(name string) string {
	return fmt.Sprintf(`{"_meta":{"vendor/x":1},"annotations":{"idempotentHint":false,"readOnlyHint":true},`+
		`"description":"does %[1]s","inputSchema":{"properties":{"name":{"type":"string"},"project":{"type":"string"}},"required":["project"],"type":"object"},"name":%[2]q}`,
		name, name)
}

func sdkResult(member string, items ...string) string {
	return `{"ttlMs":0,"cacheScope":"","_meta":{"progressToken":"t"},"nextCursor":"abc==",` +
		fmt.Sprintf("%q:[", member) + strings.Join(items, ",") + `]}`
}

func TestFilter(t *testing.T) {
	r := testRoute(t)
	for _, tt := range []struct {
		name    string
		method  string
		granted string
		items   []string // the list items, raw
		member  string
		keep    []int // indexes of the items kept
	}{
		{
			name:    "tools by scope, deny, default and templates",
			method:  "tools/list",
			member:  "tools",
			granted: "mcp:basic docs:read document:read:roadmap",
			items: []string{
				sdkTool("search"),                            // 0 keep
				sdkTool("get_document"),                      // 1 keep: docs:read and a document:read:* scope
				sdkTool("write_document"),                    // 2 docs:write missing
				sdkTool("delete_repo"),                       // 3 listed deny
				sdkTool("echo"),                              // 4 keep: route scope only
				sdkTool("drop_table"),                        // 5 unlisted: default deny
				sdkTool("Search"),                            // 6 names are exact
				`{"description":"no name"}`,                  // 7
				`{"Name":"search"}`,                          // 8 case variant only
				`{"name":"search","NAME":"drop_table"}`,      // 9 ambiguous
				`{"name":"search","name":"drop_table"}`,      // 10 duplicate
				`{"name":42}`,                                // 11 not a string
				`"search"`,                                   // 12 not an object
				`{"name":"sea\u0072ch","description":"esc"}`, // 13 keep: decodes to search
				`{"n\u0061me":"echo"}`,                       // 14 keep: the key decodes to name
				`{"name":null}`,                              // 15
				`{"name":"search","\u004eame":"drop_table"}`, // 16 escaped case variant
				`{"name":"search","\u212aey":1}`,             // 17 keep: unrelated key
			},
			keep: []int{0, 1, 4, 13, 14, 17},
		},
		{
			name:    "templated tool needs a matching granted scope",
			method:  "tools/list",
			member:  "tools",
			granted: "mcp:basic docs:admin document:read:Roadmap document:read:../x document:write:roadmap",
			items:   []string{sdkTool("get_document"), sdkTool("write_document"), sdkTool("search")},
			keep:    []int{1, 2},
		},
		{
			name:    "without the route scope nothing is listed",
			method:  "tools/list",
			member:  "tools",
			granted: "docs:admin document:read:roadmap",
			items:   []string{sdkTool("search"), sdkTool("echo")},
			keep:    nil,
		},
		{
			name:    "prompts",
			method:  "prompts/list",
			member:  "prompts",
			granted: "mcp:basic docs:read prompts:any",
			items: []string{
				`{"arguments":[{"name":"project","required":true}],"name":"summarize"}`,     // keep
				`{"arguments":[{"name":"project","required":true}],"name":"project_brief"}`, // no document:read:*
				`{"name":"forbidden"}`,
				`{"name":"other","title":"allowed by default with prompts:any"}`, // keep
				`{"arguments":[{"name":"summarize"}]}`,                           // nested name only
			},
			keep: []int{0, 3},
		},
		{
			name:    "resources by URI as Decide would",
			method:  "resources/list",
			member:  "resources",
			granted: "mcp:basic docs:read document:read:roadmap",
			items: []string{
				`{"mimeType":"text/plain","name":"r","uri":"docs://readme"}`,    // 0 keep
				`{"name":"p","uri":"docs://projects/roadmap/readme"}`,           // 1 keep
				`{"name":"p","uri":"docs://projects/payroll/readme"}`,           // 2 missing scope
				`{"name":"p","uri":"docs://projects/Roadmap/readme"}`,           // 3 bad segment
				`{"name":"pub","uri":"docs://public/a/b.md"}`,                   // 4 keep
				`{"name":"s","uri":"docs://secret/keys"}`,                       // 5 deny
				`{"name":"t","uri":"docs://public/../secret/keys"}`,             // 6 unsafe
				`{"name":"m","uri":"mail://inbox"}`,                             // 7 default deny
				`{"name":"docs://readme"}`,                                      // 8 no uri
				`{"name":"u","uri":"docs://readme","URI":"docs://secret/keys"}`, // 9 ambiguous
			},
			keep: []int{0, 1, 4},
		},
		{
			name:    "resource templates",
			method:  "resources/templates/list",
			member:  "resourceTemplates",
			granted: "mcp:basic document:read:roadmap",
			items: []string{
				`{"name":"p","uriTemplate":"docs://projects/{project}/readme"}`, // 0 keep: a document:read:* scope
				`{"name":"s","uriTemplate":"docs://secret/{id}"}`,               // 1 covered by the deny rule
				`{"name":"s","uriTemplate":"docs://secret/{+path}"}`,            // 2 covered by the deny rule
				`{"name":"pub","uriTemplate":"docs://public/{path}"}`,           // 3 keep
				`{"name":"pub","uriTemplate":"docs://public/{+path}"}`,          // 4 keep
				`{"name":"m","uriTemplate":"mail://{box}/x"}`,                   // 5 default deny
				`{"name":"bad","uriTemplate":"docs://../{x}"}`,                  // 6 unsafe literal text
				`{"name":"bad","uriTemplate":"docs://projects/{x"}`,             // 7 malformed
				`{"name":"r","uriTemplate":"docs://{section}/readme"}`,          // 8 keep: may be docs://public/readme
				`{"name":"any","uriTemplate":"{+base}/x"}`,                      // 9 keep: could be anything
				`{"name":"q","uriTemplate":"docs://projects/Roadmap/{f}"}`,      // 10 no rule allows it
				`{"name":"no template"}`,                                        // 11
			},
			keep: []int{0, 3, 4, 8, 9},
		},
		{
			name:    "resource templates without a matching scope",
			method:  "resources/templates/list",
			member:  "resourceTemplates",
			granted: "mcp:basic docs:read",
			items:   []string{`{"name":"p","uriTemplate":"docs://projects/{project}/readme"}`, `{"name":"readme","uriTemplate":"docs://readme"}`},
			keep:    []int{1},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(sdkResult(tt.member, tt.items...))
			var kept []string
			for _, i := range tt.keep {
				kept = append(kept, tt.items[i])
			}
			want := sdkResult(tt.member, kept...)
			out, removed, err := r.Filter(tt.method, in, grant(t, tt.granted))
			if err != nil {
				t.Fatal(err)
			}
			if removed != len(tt.items)-len(tt.keep) {
				t.Errorf("removed = %d, want %d", removed, len(tt.items)-len(tt.keep))
			}
			// Kept items and every other member pass through byte for byte.
			if string(out) != want {
				t.Errorf("Filter output:\n got %s\nwant %s", out, want)
			}
			if !json.Valid(out) {
				t.Errorf("output is not valid JSON: %s", out)
			}
		})
	}
}

func TestFilterUnchanged(t *testing.T) {
	r := testRoute(t)
	g := grant(t, "mcp:basic docs:read")
	for _, in := range []string{
		sdkResult("tools", sdkTool("search"), sdkTool("echo")),
		`{"ttlMs":0,"cacheScope":"","tools":null}`,
		`{"tools":[]}`,
		" {\n  \"tools\" : [ ] , \"nextCursor\" : \"x\"\n} ",
	} {
		out, removed, err := r.Filter("tools/list", []byte(in), g)
		if err != nil || removed != 0 || string(out) != in {
			t.Errorf("Filter(%s) = %s, %d, %v; want unchanged", in, out, removed, err)
		}
	}
	// Whitespace around items is tolerated and the output stays valid.
	in := "{ \"tools\" : [ " + sdkTool("search") + " ,\n " + sdkTool("drop_table") + " ] , \"nextCursor\":\"n\" }"
	out, removed, err := r.Filter("tools/list", []byte(in), g)
	if err != nil || removed != 1 {
		t.Fatalf("Filter = %d, %v", removed, err)
	}
	var got struct {
		Tools      []json.RawMessage `json:"tools"`
		NextCursor string            `json:"nextCursor"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Tools) != 1 || string(got.Tools[0]) != sdkTool("search") || got.NextCursor != "n" {
		t.Errorf("Filter output %s", out)
	}
}

func TestFilterErrors(t *testing.T) {
	r := testRoute(t)
	g := grant(t, "mcp:basic docs:read")
	for _, tt := range []struct {
		method, in, want string
	}{
		{"tools/list", ``, "not valid JSON"},
		{"tools/list", `{"tools":[}`, "not valid JSON"},
		{"tools/list", `{"tools":[]} x`, "not valid JSON"},
		{"tools/list", `{"tools":["a\xffb"]}`, "not valid JSON"},
		{"tools/list", `[{"name":"search"}]`, "not a JSON object"},
		{"tools/list", `"tools"`, "not a JSON object"},
		{"tools/list", `null`, "not a JSON object"},
		{"tools/list", `{}`, `member "tools" is missing`},
		{"tools/list", `{"prompts":[]}`, `member "tools" is missing`},
		{"tools/list", `{"tools":[],"tools":[]}`, `member "tools" appears twice`},
		{"tools/list", `{"tools":[],"t\u006fols":[{"name":"drop_table"}]}`, `member "tools" appears twice`},
		{"tools/list", `{"tools":[],"Tools":[{"name":"drop_table"}]}`, `member "Tools" is a case variant of "tools"`},
		{"tools/list", `{"TOOLS":[]}`, "case variant"},
		{"tools/list", `{"tools":{"name":"x"}}`, `"tools" is not an array`},
		{"tools/list", `{"tools":"x"}`, `"tools" is not an array`},
		{"tools/list", `{"tools":0}`, `"tools" is not an array`},
		{"prompts/list", `{"tools":[]}`, `member "prompts" is missing`},
		{"resources/list", `{"resources":true}`, "not an array"},
		{"resources/templates/list", `{"resourcetemplates":[]}`, "case variant"},
	} {
		out, n, err := r.Filter(tt.method, []byte(tt.in), g)
		if !errors.Is(err, ErrMalformedResult) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Filter(%s, %q) error = %v, want %q", tt.method, tt.in, err, tt.want)
		}
		if out != nil || n != 0 {
			t.Errorf("Filter(%s, %q) returned output with an error", tt.method, tt.in)
		}
	}
	if _, _, err := r.Filter("tools/call", []byte(`{}`), g); err == nil || errors.Is(err, ErrMalformedResult) {
		t.Errorf("Filter(tools/call) error = %v", err)
	}
}

// FuzzFilter checks Filter on arbitrary results: no panic; on success the
// output is valid JSON, is the input itself when nothing was removed, and
// filtering it again removes nothing.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		sdkResult("tools", sdkTool("search"), sdkTool("drop_table"), `{"name":"x\"y"}`),
		sdkResult("tools", `{"name":"sea\u0072ch"}`, `"s"`, `[1,{"name":"echo"}]`, `{"Name":"echo"}`),
		`{"tools":null,"nextCursor":"\"]}"}`,
		`{"tools":[{"name":"search","x":"]}{\\\""}]}`,
		`{"tools":[],"Tools":[]}`,
		` { "tools" : [ { "name" : "echo" } , 1 , "" , null ] } `,
		`[]`, `{}`, `{"tools":[`,
	} {
		f.Add(s)
	}
	r, err := Compile(testHierarchy(f), testConfig())
	if err != nil {
		f.Fatal(err)
	}
	g := grant(f, "mcp:basic docs:read document:read:roadmap")
	f.Fuzz(func(t *testing.T, in string) {
		for _, method := range []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"} {
			out, removed, err := r.Filter(method, []byte(in), g)
			if err != nil {
				continue
			}
			if !json.Valid(out) || removed < 0 {
				t.Fatalf("Filter(%s, %q) = %q, %d", method, in, out, removed)
			}
			if removed == 0 && !bytes.Equal(out, []byte(in)) {
				t.Fatalf("Filter(%s, %q) changed the result without removing anything", method, in)
			}
			again, n, err := r.Filter(method, out, g)
			if err != nil || n != 0 || !bytes.Equal(again, out) {
				t.Fatalf("refiltering %q: %q, %d, %v", out, again, n, err)
			}
		}
	})
}

func TestFilterKeepsOtherMembers(t *testing.T) {
	r := testRoute(t)
	in := `{"_meta":{"tools":[{"name":"drop_table"}]},"tools":[{"name":"drop_table"},{"name":"echo"}],"nextCursor":"c","extra":{"name":"drop_table"}}`
	out, n, err := r.Filter("tools/list", []byte(in), grant(t, "mcp:basic"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_meta":{"tools":[{"name":"drop_table"}]},"tools":[{"name":"echo"}],"nextCursor":"c","extra":{"name":"drop_table"}}`
	if diff := cmp.Diff(want, string(out)); diff != "" || n != 1 {
		t.Errorf("Filter removed %d (-want +got):\n%s", n, diff)
	}
}
