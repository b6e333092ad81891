// This file implements the CEL environment of sequence rules. See
// https://github.com/google/cel-spec/blob/master/doc/langdef.md

package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"

	"github.com/mcpgate/mcpgate/internal/state"
)

// maxCELSize bounds a When expression, in code points.
const maxCELSize = 4096

// The object types of the CEL environment.
var (
	celCallType    = types.NewObjectType("mcpgate.Call")
	celListedType  = types.NewObjectType("mcpgate.ListedTool")
	celSessionType = types.NewObjectType("mcpgate.Session")
	celEntryType   = types.NewObjectType("mcpgate.HistoryEntry")
	celRequestType = types.NewObjectType("mcpgate.Request")
)

// celNeeds says which history fields list-phase rules read.
type celNeeds uint8

const (
	needHistory celNeeds = 1 << iota
	needCounts
)

// celEnvs holds the two phases' environments. They differ only in the type
// of `call`: in the list phase it has no `args` field, so a list rule that
// reads call.args fails to compile.
type celEnvs struct {
	call, list *cel.Env
	// scans are the native history scans of the rules compiled so far
	// (see sequence_histscan.go); interpretOnly turns the rewrite off.
	scans         []histScan
	interpretOnly bool
}

func newCELEnvs() (*celEnvs, error) {
	call, err := newCELEnv(celCallType)
	if err != nil {
		return nil, err
	}
	list, err := newCELEnv(celListedType)
	if err != nil {
		return nil, err
	}
	return &celEnvs{call: call, list: list}, nil
}

func newCELEnv(callType *types.Type) (*cel.Env, error) {
	return cel.NewEnv(
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(maxCELSize),
		ext.Strings(), ext.Lists(ext.ListsMaxRangeSize(1000)), ext.Sets(), ext.Math(),
		ext.TwoVarComprehensions(), ext.Bindings(),
		func(e *cel.Env) (*cel.Env, error) {
			return cel.CustomTypeProvider(&celProvider{Provider: e.CELTypeProvider()})(e)
		},
		cel.Variable("issuer", cel.StringType),
		cel.Variable("subject", cel.StringType),
		cel.Variable("client_id", cel.StringType),
		cel.Variable("scopes", cel.ListType(cel.StringType)),
		cel.Variable("route", cel.StringType),
		cel.Variable("call", callType),
		cel.Variable("session", celSessionType),
		cel.Variable("request", celRequestType),
		cel.Variable("now", cel.TimestampType),
		historyIndexFunction("firstCall", false, false),
		historyIndexFunction("lastCall", true, false),
		historyIndexFunction("firstLabelled", false, true),
		historyIndexFunction("lastLabelled", true, true),
		historyScanFunctions(),
	)
}

// historyIndexFunction declares session.<name>(string) -> int: the index
// in session.history of the first (or last) call to the tool named (or
// carrying the label), -1 if none. Native loops make ordered patterns
// cheap: "an untrusted_input call after a read_secret call" is
// session.lastLabelled("untrusted_input") > session.firstCall("read_secret")
// && session.firstCall("read_secret") >= 0.
func historyIndexFunction(name string, last, label bool) cel.EnvOption {
	return cel.Function(name, cel.MemberOverload("session_"+name+"_string",
		[]*cel.Type{celSessionType, cel.StringType}, cel.IntType,
		cel.BinaryBinding(func(sv, arg ref.Val) ref.Val {
			o, ok := sv.(*celObject)
			want, ok2 := arg.(types.String)
			if !ok || !ok2 {
				return types.NewErr("%s: unexpected arguments", name)
			}
			return types.Int(o.ctx.index(string(want), last, label, func() int {
				entries := o.ctx.historyView()
				match := func(e *state.Entry) bool {
					if label {
						return slices.Contains(e.Labels, string(want))
					}
					return e.Tool == string(want)
				}
				if last {
					for i := len(entries) - 1; i >= 0; i-- {
						if match(&entries[i]) {
							return i
						}
					}
				} else {
					for i := range entries {
						if match(&entries[i]) {
							return i
						}
					}
				}
				return -1
			}))
		})))
}

// historyView is session.history: the newest celMaxHistory entries.
func (e *evalCtx) historyView() []state.Entry {
	entries := e.hist.Entries
	return entries[max(0, len(entries)-celMaxHistory):]
}

// compile type-checks expr for its phase and plans it.
func (e *celEnvs) compile(expr string, list bool) (*celProgram, error) {
	env := e.call
	if list {
		env = e.list
	}
	a, iss := env.Compile(expr)
	if iss.Err() != nil {
		if list {
			if _, ci := e.call.Compile(expr); ci.Err() == nil {
				return nil, errors.New("a list-phase rule can read call.tool and call.labels only (a tools/list request has no arguments): " + iss.Err().Error())
			}
		}
		return nil, iss.Err()
	}
	if !a.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must be a bool expression, not %s", a.OutputType())
	}
	var errs []error
	readsArgs := false
	ast.PreOrderVisit(ast.NavigateAST(a.NativeRep()), ast.NewExprVisitor(func(x ast.Expr) {
		switch x.Kind() {
		case ast.StructKind:
			if name := x.AsStruct().TypeName(); celObjectTypes[name] != nil {
				errs = append(errs, fmt.Errorf("%s values cannot be constructed", name))
			}
		case ast.SelectKind:
			s := x.AsSelect()
			if op := s.Operand(); s.FieldName() == "args" && op.Kind() == ast.IdentKind && op.AsIdent() == "call" {
				readsArgs = true
			}
		}
	}))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !e.interpretOnly {
		opt, err := cel.NewStaticOptimizer(historyScans{&e.scans})
		if err != nil {
			return nil, err
		}
		if a, iss = opt.Optimize(env, a); iss.Err() != nil {
			return nil, fmt.Errorf("history scans: %w", iss.Err())
		}
	}
	return newCELProgram(env, a, readsArgs)
}

// needs reports which history fields a (compiled, list-phase) expression
// may read: any use of `session` other than session.taint counts as all.
func (e *celEnvs) needs(expr string) celNeeds {
	a, iss := e.list.Parse(expr)
	if iss.Err() != nil {
		return needHistory | needCounts
	}
	var n celNeeds
	idents, selects := 0, 0
	ast.PreOrderVisit(ast.NavigateAST(a.NativeRep()), ast.NewExprVisitor(func(x ast.Expr) {
		switch x.Kind() {
		case ast.IdentKind:
			if x.AsIdent() == "session" {
				idents++
			}
		case ast.SelectKind:
			s := x.AsSelect()
			if op := s.Operand(); op.Kind() == ast.IdentKind && op.AsIdent() == "session" {
				selects++
				switch s.FieldName() {
				case "history":
					n |= needHistory
				case "counts":
					n |= needCounts
				}
			}
		}
	}))
	if idents > selects {
		return needHistory | needCounts
	}
	return n
}

// celProvider adds the object types above to the base type provider.
type celProvider struct {
	types.Provider
}

type celField struct {
	typ *types.Type
	get func(*evalCtx) (ref.Val, error)
}

var celFields = map[string]map[string]celField{
	celCallType.TypeName(): {
		"tool":   {cel.StringType, func(e *evalCtx) (ref.Val, error) { return types.String(e.tool), nil }},
		"labels": {cel.ListType(cel.StringType), func(e *evalCtx) (ref.Val, error) { return stringList(e.labels), nil }},
		"args":   {cel.MapType(cel.StringType, cel.DynType), (*evalCtx).argsVal},
	},
	celListedType.TypeName(): {
		"tool":   {cel.StringType, func(e *evalCtx) (ref.Val, error) { return types.String(e.tool), nil }},
		"labels": {cel.ListType(cel.StringType), func(e *evalCtx) (ref.Val, error) { return stringList(e.labels), nil }},
	},
	celSessionType.TypeName(): {
		"history": {cel.ListType(celEntryType), func(e *evalCtx) (ref.Val, error) { return e.history(), nil }},
		"taint":   {cel.ListType(cel.StringType), func(e *evalCtx) (ref.Val, error) { return stringList(e.hist.Taint), nil }},
		"counts":  {cel.MapType(cel.StringType, cel.IntType), func(e *evalCtx) (ref.Val, error) { return countsMap{e.hist.Counts}, nil }},
	},
	celRequestType.TypeName(): {
		"client_ip": {cel.StringType, func(e *evalCtx) (ref.Val, error) { return types.String(e.c.ClientIP), nil }},
		"headers": {cel.MapType(cel.StringType, cel.StringType), func(e *evalCtx) (ref.Val, error) {
			return types.NewStringStringMap(types.DefaultTypeAdapter, e.c.Headers), nil
		}},
	},
}

// entryFields are the fields of mcpgate.HistoryEntry.
var entryFields = map[string]*types.FieldType{
	"route":  entryField(cel.StringType, func(x *entryRef) ref.Val { return x.names.str(x.e.Route) }),
	"tool":   entryField(cel.StringType, func(x *entryRef) ref.Val { return x.names.str(x.e.Tool) }),
	"labels": entryField(cel.ListType(cel.StringType), func(x *entryRef) ref.Val { return labelList{x} }),
	"at":     entryField(cel.TimestampType, func(x *entryRef) ref.Val { return types.Timestamp{Time: x.e.At} }),
}

func entryField(t *types.Type, get func(*entryRef) ref.Val) *types.FieldType {
	return &types.FieldType{
		Type:  t,
		IsSet: func(any) bool { return true },
		GetFrom: func(obj any) (any, error) {
			x, ok := obj.(*entryRef)
			if !ok {
				return nil, fmt.Errorf("history entry: unexpected %T", obj)
			}
			return get(x), nil
		},
	}
}

// celFieldTypes are the FieldTypes of celFields, built once.
var celFieldTypes = func() map[string]map[string]*types.FieldType {
	out := map[string]map[string]*types.FieldType{celEntryType.TypeName(): entryFields}
	for tn, fs := range celFields {
		m := map[string]*types.FieldType{}
		for name, f := range fs {
			m[name] = &types.FieldType{
				Type:  f.typ,
				IsSet: func(any) bool { return true },
				GetFrom: func(obj any) (any, error) {
					e, ok := obj.(*evalCtx)
					if !ok {
						return nil, fmt.Errorf("%s: unexpected %T", tn, obj)
					}
					return f.get(e)
				},
			}
		}
		out[tn] = m
	}
	return out
}()

var celObjectTypes = map[string]*types.Type{
	celCallType.TypeName(): celCallType, celListedType.TypeName(): celListedType,
	celSessionType.TypeName(): celSessionType, celEntryType.TypeName(): celEntryType,
	celRequestType.TypeName(): celRequestType,
}

func (p *celProvider) FindStructType(name string) (*types.Type, bool) {
	if t, ok := celObjectTypes[name]; ok {
		return types.NewTypeTypeWithParam(t), true
	}
	return p.Provider.FindStructType(name)
}

func (p *celProvider) FindStructFieldNames(name string) ([]string, bool) {
	if fs, ok := celFieldTypes[name]; ok {
		names := make([]string, 0, len(fs))
		for n := range fs {
			names = append(names, n)
		}
		return names, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *celProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if fs, ok := celFieldTypes[name]; ok {
		f, ok := fs[field]
		return f, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p *celProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := celObjectTypes[name]; ok {
		return types.NewErr("%s values cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

func stringList(s []string) ref.Val { return types.NewStringList(types.DefaultTypeAdapter, s) }

// celErrText renders a CEL evaluation error for a Reason: shortened, with
// every character outside printable ASCII escaped (it may quote argument
// values).
func celErrText(err error) string {
	s := strings.TrimSpace(err.Error())
	// Only messages that name parts of the rule (a key, an operator) are
	// told to the agent; any other may quote a value — an argument, a
	// header a proxy set — and is reduced to its kind.
	switch {
	case strings.HasPrefix(s, "no such key:"), strings.HasPrefix(s, "no such overload"),
		strings.HasPrefix(s, "no such attribute"), strings.Contains(s, "cost limit exceeded"),
		strings.HasPrefix(s, "index out of bounds"), strings.HasPrefix(s, "division by zero"), strings.HasPrefix(s, "modulus by zero"):
	default:
		return "a value it reads is missing or of the wrong type"
	}
	if len(s) > 160 {
		cut := 160
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
