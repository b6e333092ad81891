package policy

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/mcpgate/mcpgate/internal/state"
)

// The values below present mcpgate's data to CEL without copying it.

// evalCtx is the input of one evaluation: the activation of the CEL
// variables, computed lazily. It is used by one goroutine.
type evalCtx struct {
	c      *Call
	tool   string
	labels []string
	hist   *state.History
	now    types.Timestamp
	list   bool
	within int8 // withinBounds: 0 not computed, 1 yes, -1 no

	callV, sessV, reqV ref.Val // cached objects
	args               ref.Val // decoded call.args, once read
	argsErr            error
	found              []histIndex // session.firstCall & co. already answered
	names              *nameTable  // the policy's boxed names
	refs               []entryRef  // session.history's entries, once per decision
	scans              []histScan  // the policy's native history scans
}

// histIndex is an answer of a history index function: every rule of a
// decision sees the same history, so it is searched once per question.
type histIndex struct {
	want        string
	last, label bool
	i           int
}

// index returns the memoised answer to (want, last, label), or computes
// it with search and remembers it.
func (e *evalCtx) index(want string, last, label bool, search func() int) int {
	for _, f := range e.found {
		if f.want == want && f.last == last && f.label == label {
			return f.i
		}
	}
	i := search()
	e.found = append(e.found, histIndex{want, last, label, i})
	return i
}

var _ interpreter.Activation = (*evalCtx)(nil)

// ResolveName implements interpreter.Activation.
func (e *evalCtx) ResolveName(name string) (any, bool) {
	switch name {
	case "issuer":
		return types.String(e.c.Issuer), true
	case "subject":
		return types.String(e.c.Subject), true
	case "client_id":
		return types.String(e.c.ClientID), true
	case "scopes":
		return stringList(e.c.Grant.expandedScopes()), true
	case "route":
		return types.String(e.c.Route), true
	case "now":
		return e.now, true
	case "call":
		if e.callV == nil {
			t := celCallType
			if e.list {
				t = celListedType
			}
			e.callV = &celObject{typ: t, ctx: e}
		}
		return e.callV, true
	case "session":
		if e.sessV == nil {
			e.sessV = &celObject{typ: celSessionType, ctx: e}
		}
		return e.sessV, true
	case "request":
		if e.reqV == nil {
			e.reqV = &celObject{typ: celRequestType, ctx: e}
		}
		return e.reqV, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (e *evalCtx) Parent() interpreter.Activation { return nil }

// argsVal decodes the call's arguments on first use.
func (e *evalCtx) argsVal() (ref.Val, error) {
	if e.args == nil && e.argsErr == nil {
		m := make(map[string]any, len(e.c.Args))
		for k, raw := range e.c.Args {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				e.argsErr = fmt.Errorf("argument %s is not valid JSON", quote(k))
				return nil, e.argsErr
			}
			m[k] = v
		}
		e.args = types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
	}
	return e.args, e.argsErr
}

// eval runs a rule's program: whether it fires, or why it could not be
// evaluated.
func (e *evalCtx) eval(p *celProgram) (bool, error) {
	prg := p.tracked
	if p.fast != nil && e.withinBounds() {
		prg = p.fast
	}
	out, _, err := prg.Eval(e)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// celObject is a value of one of the object types; its fields are read
// from ctx by the provider's FieldTypes.
type celObject struct {
	typ *types.Type
	ctx *evalCtx
}

func (o *celObject) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s cannot be converted", o.typ.TypeName())
}

func (o *celObject) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return o.typ
	}
	return types.NewErr("%s cannot be converted to %s", o.typ.TypeName(), t.TypeName())
}

func (o *celObject) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }
func (o *celObject) Type() ref.Type              { return o.typ }
func (o *celObject) Value() any                  { return o.ctx }

// entryVal is one history entry as a CEL object: a pointer into the
// evaluation's entry views, so boxing it allocates nothing.
type entryVal struct{ r *entryRef }

// entryRef is a history entry with the name table its fields are read
// through.
type entryRef struct {
	e     *state.Entry
	names *nameTable
}

func (v entryVal) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("a history entry cannot be converted")
}

func (v entryVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return celEntryType
	}
	return types.NewErr("a history entry cannot be converted to %s", t.TypeName())
}

func (v entryVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(entryVal)
	return types.Bool(ok && o.r.e == v.r.e)
}
func (v entryVal) Type() ref.Type { return celEntryType }
func (v entryVal) Value() any     { return v.r }

// histList is session.history: the stored entries, oldest first, viewed
// without copying.
type histList struct {
	entries []state.Entry
	refs    []entryRef // entries[i] is refs[i].e
}

var _ traits.Lister = (*histList)(nil)
var _ traits.Foldable = (*histList)(nil)

func (l *histList) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("session.history cannot be converted")
}

func (l *histList) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return types.ListType
	}
	return types.NewErr("session.history cannot be converted to %s", t.TypeName())
}

func (l *histList) Equal(other ref.Val) ref.Val {
	o, ok := other.(traits.Lister)
	if !ok || o.Size() != l.Size() {
		return types.False
	}
	for i := range l.entries {
		if l.at(i).Equal(o.Get(types.Int(i))) != types.True {
			return types.False
		}
	}
	return types.True
}

func (l *histList) Type() ref.Type { return types.ListType }

// Value returns the list itself, not a slice, so that cel-go's reflective
// helpers (slice, reverse) use Get instead of adapting raw entries.
func (l *histList) Value() any { return l }

func (l *histList) at(i int) ref.Val { return entryVal{&l.refs[i]} }

func (l *histList) Add(other ref.Val) ref.Val {
	o, ok := other.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(other)
	}
	n := int(o.Size().(types.Int))
	vals := make([]ref.Val, 0, len(l.entries)+n)
	for i := range l.entries {
		vals = append(vals, l.at(i))
	}
	for i := range n {
		vals = append(vals, o.Get(types.Int(i)))
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

func (l *histList) Contains(v ref.Val) ref.Val {
	for i := range l.entries {
		if l.at(i).Equal(v) == types.True {
			return types.True
		}
	}
	return types.False
}

func (l *histList) Get(index ref.Val) ref.Val {
	i, ok := index.(types.Int)
	if !ok {
		return types.ValOrErr(index, "unsupported index type %s", index.Type().TypeName())
	}
	if i < 0 || int64(i) >= int64(len(l.entries)) {
		return types.NewErr("index '%d' out of range in list size '%d'", i, len(l.entries))
	}
	return l.at(int(i))
}

func (l *histList) Size() ref.Val { return types.Int(len(l.entries)) }

func (l *histList) Fold(f traits.Folder) {
	for i := range l.entries {
		if !f.FoldEntry(celIndex(i), l.at(i)) {
			return
		}
	}
}

func (l *histList) Iterator() traits.Iterator { return &histIter{l: l} }

// histIter iterates a histList.
type histIter struct {
	l *histList
	i int
}

func (it *histIter) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("iterator cannot be converted")
}
func (it *histIter) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("iterator cannot be converted")
}
func (it *histIter) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(it)) }
func (it *histIter) Type() ref.Type              { return types.IteratorType }
func (it *histIter) Value() any                  { return it }
func (it *histIter) HasNext() ref.Val            { return types.Bool(it.i < len(it.l.entries)) }
func (it *histIter) Next() ref.Val {
	if it.i >= len(it.l.entries) {
		return types.NewErr("iterator exhausted")
	}
	it.i++
	return it.l.at(it.i - 1)
}

// countsMap is session.counts: calls per "route/tool". A key never called
// reads as 0 (so that `session.counts[k] > n` needs no guard), while
// `k in session.counts` still tells whether it was called.
type countsMap struct{ m map[string]int }

var _ traits.Mapper = countsMap{}

func (c countsMap) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("session.counts cannot be converted")
}

func (c countsMap) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return types.MapType
	}
	return types.NewErr("session.counts cannot be converted to %s", t.TypeName())
}

func (c countsMap) Equal(other ref.Val) ref.Val {
	o, ok := other.(traits.Mapper)
	if !ok || o.Size() != c.Size() {
		return types.False
	}
	for k, n := range c.m {
		if v, found := o.Find(types.String(k)); !found || v.Equal(types.Int(n)) != types.True {
			return types.False
		}
	}
	return types.True
}

func (c countsMap) Type() ref.Type { return types.MapType }
func (c countsMap) Value() any     { return c.m }
func (c countsMap) Size() ref.Val  { return types.Int(len(c.m)) }

func (c countsMap) Contains(key ref.Val) ref.Val {
	s, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key)
	}
	_, found := c.m[string(s)]
	return types.Bool(found)
}

func (c countsMap) Get(key ref.Val) ref.Val {
	v, _ := c.Find(key)
	return v
}

func (c countsMap) Find(key ref.Val) (ref.Val, bool) {
	s, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	return types.Int(c.m[string(s)]), true
}

func (c countsMap) Iterator() traits.Iterator {
	keys := slices.Sorted(maps.Keys(c.m))
	return types.NewStringList(types.DefaultTypeAdapter, keys).(traits.Iterable).Iterator()
}

// history returns session.history for this evaluation: the entries
// with their refs, built once per decision.
func (e *evalCtx) history() *histList {
	entries := e.historyView()
	if len(e.refs) != len(entries) || (len(entries) > 0 && e.refs[0].e != &entries[0]) {
		e.refs = e.refs[:0]
		for i := range entries {
			e.refs = append(e.refs, entryRef{e: &entries[i], names: e.names})
		}
	}
	return &histList{entries: entries, refs: e.refs}
}

// celIndexes are the list indexes 0 … celMaxHistory-1 as CEL values,
// boxed once: a fold over the history passes one per entry.
var celIndexes = func() []ref.Val {
	v := make([]ref.Val, celMaxHistory)
	for i := range v {
		v[i] = types.Int(i)
	}
	return v
}()

func celIndex(i int) ref.Val {
	if i < len(celIndexes) {
		return celIndexes[i]
	}
	return types.Int(i)
}

// nameTable holds tool, route and label names as CEL strings, boxed once
// per compiled policy (a scan of the history reads them for every entry),
// and interns the names and label sets of recorded calls, so that the
// entries of a history share them: less memory, and a scan reads a few
// hot cache lines instead of one line per entry. Reads take no lock; a
// new name copies its table (names are few: the configured tools, routes
// and labels). Each table is bounded; past the bound a name is boxed or
// copied on each use, as without the table.
type nameTable struct {
	mu    sync.Mutex
	vals  atomic.Pointer[map[string]ref.Val]
	strs  atomic.Pointer[map[string]string]
	lsets atomic.Pointer[map[string][]string] // by the labels, length-prefixed
}

const maxNames = 4096

// cowPut returns a copy of *m with k set to v, nil when m is full.
func cowPut[V any](m *map[string]V, k string, v V) *map[string]V {
	n := 0
	if m != nil {
		n = len(*m)
	}
	if n >= maxNames {
		return nil
	}
	out := make(map[string]V, n+1)
	if m != nil {
		for k, x := range *m {
			out[k] = x
		}
	}
	out[k] = v
	return &out
}

// str returns s as a CEL string.
func (t *nameTable) str(s string) ref.Val {
	if t == nil {
		return types.String(s)
	}
	if m := t.vals.Load(); m != nil {
		if v, ok := (*m)[s]; ok {
			return v
		}
	}
	v := ref.Val(types.String(s))
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := cowPut(t.vals.Load(), strings.Clone(s), v); m != nil {
		t.vals.Store(m)
	}
	return v
}

// intern returns a string equal to s, shared by every caller.
func (t *nameTable) intern(s string) string {
	if m := t.strs.Load(); m != nil {
		if v, ok := (*m)[s]; ok {
			return v
		}
	}
	v := strings.Clone(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := cowPut(t.strs.Load(), v, v); m != nil {
		t.strs.Store(m)
	}
	return v
}

// labels returns a slice equal to ls, shared by every caller: never
// modify it.
func (t *nameTable) labels(ls []string) []string {
	if len(ls) == 0 {
		return nil
	}
	var kb [256]byte
	key := kb[:0]
	for _, l := range ls {
		key = append(binary.AppendUvarint(key, uint64(len(l))), l...) // length-prefixed: unambiguous
	}
	if m := t.lsets.Load(); m != nil {
		if v, ok := (*m)[string(key)]; ok {
			return v
		}
	}
	v := make([]string, len(ls))
	for i, l := range ls {
		v[i] = t.intern(l)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := cowPut(t.lsets.Load(), string(key), v); m != nil {
		t.lsets.Store(m)
	}
	return v
}

// labelList is an entry's labels as a CEL list of strings: membership
// ("x" in e.labels) compares the stored strings without boxing them.
type labelList struct{ r *entryRef }

var _ traits.Lister = labelList{}

func (l labelList) list() ref.Val { return stringList(l.r.e.Labels) }

func (l labelList) ConvertToNative(t reflect.Type) (any, error) { return l.list().ConvertToNative(t) }
func (l labelList) ConvertToType(t ref.Type) ref.Val            { return l.list().ConvertToType(t) }
func (l labelList) Equal(other ref.Val) ref.Val                 { return l.list().Equal(other) }
func (l labelList) Type() ref.Type                              { return types.ListType }
func (l labelList) Value() any                                  { return l.r.e.Labels }
func (l labelList) Add(other ref.Val) ref.Val                   { return l.list().(traits.Adder).Add(other) }
func (l labelList) Iterator() traits.Iterator                   { return l.list().(traits.Iterable).Iterator() }
func (l labelList) Size() ref.Val                               { return types.Int(len(l.r.e.Labels)) }

func (l labelList) Contains(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return l.list().(traits.Container).Contains(v)
	}
	return types.Bool(slices.Contains(l.r.e.Labels, string(s)))
}

func (l labelList) Get(index ref.Val) ref.Val {
	i, ok := index.(types.Int)
	if !ok {
		return types.ValOrErr(index, "unsupported index type %s", index.Type().TypeName())
	}
	if i < 0 || int64(i) >= int64(len(l.r.e.Labels)) {
		return types.NewErr("index '%d' out of range in list size '%d'", i, len(l.r.e.Labels))
	}
	return l.r.names.str(l.r.e.Labels[i])
}
