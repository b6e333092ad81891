package policy

import (
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/mcpgate/mcpgate/internal/state"
)

// Native history scans.
//
// A rule such as session.history.exists(e, e.tool == "export" &&
// "secrets" in e.labels) is the usual way to ask about a session's past,
// and CEL's interpreter spends about 100 ns per entry on it: 100 µs per
// call over a history of 1000. When the predicate of an exists, all,
// exists_one or filter(…).size() over session.history reads only its
// entry's tool, route and labels and compares them with string literals
// (==, !=, in, &&, ||, !), the rule is rewritten at load to call a Go
// function that runs the same predicate over the same entries, a few
// nanoseconds each. Its answer is CEL's: none of these operations can
// fail, so CEL's error rules never apply. Anything else is left to CEL.

// scanFunction and countFunction are the member functions rewritten
// scans call: session.<scanFunction>(k) answers the k-th native scan (a
// bool), session.<countFunction>(k) counts its matches. Their names
// cannot be written in a rule (identifiers cannot start with "@").
const (
	scanFunction  = "@mcpgate_history_scan"
	countFunction = "@mcpgate_history_count"
)

// scanMode is what a native scan answers.
type scanMode uint8

const (
	scanExists    scanMode = iota // some entry matches
	scanAll                       // every entry matches
	scanExistsOne                 // exactly one entry matches
	scanCount                     // how many entries match
)

// histScan is one native scan.
type histScan struct {
	mode scanMode
	pred entryPred
}

// count returns the matches among entries, stopping once the mode's
// answer is known.
func (s histScan) count(entries []state.Entry) int {
	n := 0
	for i := range entries {
		if !s.pred(&entries[i]) {
			if s.mode == scanAll {
				return -1 // a non-match decides
			}
			continue
		}
		n++
		if s.mode == scanExists || (s.mode == scanExistsOne && n > 1) {
			break
		}
	}
	return n
}

func (s histScan) holds(entries []state.Entry) bool {
	n := s.count(entries)
	switch s.mode {
	case scanAll:
		return n >= 0
	case scanExistsOne:
		return n == 1
	}
	return n > 0
}

// entryPred is a predicate over one history entry.
type entryPred func(e *state.Entry) bool

// historyScanFunctions declares the functions rewritten scans call.
func historyScanFunctions() cel.EnvOption {
	scan := func(sv, k ref.Val) (*histScan, []state.Entry, bool) {
		o, ok := sv.(*celObject)
		i, ok2 := k.(types.Int)
		if !ok || !ok2 || i < 0 || int(i) >= len(o.ctx.scans) {
			return nil, nil, false
		}
		return &o.ctx.scans[i], o.ctx.historyView(), true
	}
	return cel.Lib(scanLib{
		cel.Function(scanFunction, cel.MemberOverload("session_history_scan_int",
			[]*cel.Type{celSessionType, cel.IntType}, cel.BoolType,
			cel.BinaryBinding(func(sv, k ref.Val) ref.Val {
				s, entries, ok := scan(sv, k)
				if !ok || s.mode == scanCount {
					return types.NewErr("history scan: unexpected arguments")
				}
				return types.Bool(s.holds(entries))
			}))),
		cel.Function(countFunction, cel.MemberOverload("session_history_count_int",
			[]*cel.Type{celSessionType, cel.IntType}, cel.IntType,
			cel.BinaryBinding(func(sv, k ref.Val) ref.Val {
				s, entries, ok := scan(sv, k)
				if !ok || s.mode != scanCount {
					return types.NewErr("history count: unexpected arguments")
				}
				return types.Int(s.count(entries))
			}))),
	})
}

// scanLib bundles the scan functions as one environment option.
type scanLib []cel.EnvOption

func (l scanLib) CompileOptions() []cel.EnvOption   { return l }
func (scanLib) ProgramOptions() []cel.ProgramOption { return nil }

// historyScans is the optimizer that rewrites scans; it appends the
// native scans it makes to *scans, which the Sequence hands to every
// evaluation.
type historyScans struct{ scans *[]histScan }

func (h historyScans) Optimize(ctx *cel.OptimizerContext, a *ast.AST) *ast.AST {
	add := func(s histScan) ast.Expr {
		k := len(*h.scans)
		*h.scans = append(*h.scans, s)
		fn := scanFunction
		if s.mode == scanCount {
			fn = countFunction
		}
		return ctx.NewMemberCall(fn, ctx.NewIdent("session"), ctx.NewLiteral(types.Int(k)))
	}
	// size(session.history.filter(v, P)) and ….size(): a count.
	sizes := ast.MatchDescendants(ast.NavigateAST(a), func(e ast.NavigableExpr) bool {
		return e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "size"
	})
	for _, c := range sizes {
		call := c.AsCall()
		var list ast.Expr
		switch {
		case call.IsMemberFunction() && len(call.Args()) == 0:
			list = call.Target()
		case !call.IsMemberFunction() && len(call.Args()) == 1:
			list = call.Args()[0]
		default:
			continue
		}
		if list.Kind() != ast.ComprehensionKind {
			continue
		}
		if pred, ok := nativeFilter(list.AsComprehension()); ok {
			ctx.ClearMacroCall(list.ID())
			ctx.UpdateExpr(c, add(histScan{mode: scanCount, pred: pred}))
		}
	}
	// exists, all, exists_one.
	comps := ast.MatchDescendants(ast.NavigateAST(a), func(e ast.NavigableExpr) bool {
		return e.Kind() == ast.ComprehensionKind
	})
	for _, c := range comps {
		if s, ok := nativeQuantifier(c.AsComprehension()); ok {
			ctx.ClearMacroCall(c.ID())
			ctx.UpdateExpr(c, add(s))
		}
	}
	return a
}

// overHistory reports whether c iterates session.history with one
// variable, and returns c's accumulator identifier test.
func overHistory(c ast.ComprehensionExpr) (isAccu func(ast.Expr) bool, ok bool) {
	if c.HasIterVar2() || !isSessionHistory(c.IterRange()) {
		return nil, false
	}
	return func(e ast.Expr) bool { return e.Kind() == ast.IdentKind && e.AsIdent() == c.AccuVar() }, true
}

// nativeQuantifier recognises session.history.exists(v, P), .all(v, P)
// and .exists_one(v, P), as the parser expands them, with a predicate P
// that can run natively.
func nativeQuantifier(c ast.ComprehensionExpr) (histScan, bool) {
	isAccu, ok := overHistory(c)
	if !ok || c.AccuInit().Kind() != ast.LiteralKind || c.LoopStep().Kind() != ast.CallKind {
		return histScan{}, false
	}
	init, step, result := c.AccuInit().AsLiteral(), c.LoopStep().AsCall(), c.Result()
	args := step.Args()
	var mode scanMode
	var p ast.Expr
	switch {
	case init == types.False && step.FunctionName() == operators.LogicalOr && len(args) == 2 && isAccu(args[0]) && isAccu(result):
		mode, p = scanExists, args[1]
	case init == types.True && step.FunctionName() == operators.LogicalAnd && len(args) == 2 && isAccu(args[0]) && isAccu(result):
		mode, p = scanAll, args[1]
	case init == types.Int(0) && step.FunctionName() == operators.Conditional && len(args) == 3 && isAccu(args[2]) &&
		isAccuPlusOne(args[1], isAccu) && isAccuEqualsOne(result, isAccu):
		mode, p = scanExistsOne, args[0]
	default:
		return histScan{}, false
	}
	pred, ok := entryPredicate(p, c.IterVar())
	return histScan{mode: mode, pred: pred}, ok
}

// nativeFilter recognises session.history.filter(v, P), as the parser
// expands it, with a predicate P that can run natively.
func nativeFilter(c ast.ComprehensionExpr) (entryPred, bool) {
	isAccu, ok := overHistory(c)
	if !ok || c.AccuInit().Kind() != ast.ListKind || len(c.AccuInit().AsList().Elements()) != 0 ||
		c.LoopStep().Kind() != ast.CallKind || !isAccu(c.Result()) {
		return nil, false
	}
	step := c.LoopStep().AsCall()
	args := step.Args()
	if step.FunctionName() != operators.Conditional || len(args) != 3 || !isAccu(args[2]) || args[1].Kind() != ast.CallKind {
		return nil, false
	}
	add := args[1].AsCall()
	if add.FunctionName() != operators.Add || len(add.Args()) != 2 || !isAccu(add.Args()[0]) || add.Args()[1].Kind() != ast.ListKind {
		return nil, false
	}
	if el := add.Args()[1].AsList().Elements(); len(el) != 1 || el[0].Kind() != ast.IdentKind || el[0].AsIdent() != c.IterVar() {
		return nil, false
	}
	return entryPredicate(args[0], c.IterVar())
}

func isAccuPlusOne(e ast.Expr, isAccu func(ast.Expr) bool) bool {
	if e.Kind() != ast.CallKind {
		return false
	}
	c := e.AsCall()
	return c.FunctionName() == operators.Add && len(c.Args()) == 2 && isAccu(c.Args()[0]) &&
		c.Args()[1].Kind() == ast.LiteralKind && c.Args()[1].AsLiteral() == types.Int(1)
}

func isAccuEqualsOne(e ast.Expr, isAccu func(ast.Expr) bool) bool {
	if e.Kind() != ast.CallKind {
		return false
	}
	c := e.AsCall()
	return c.FunctionName() == operators.Equals && len(c.Args()) == 2 && isAccu(c.Args()[0]) &&
		c.Args()[1].Kind() == ast.LiteralKind && c.Args()[1].AsLiteral() == types.Int(1)
}

func isSessionHistory(e ast.Expr) bool {
	if e.Kind() != ast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == "history" && s.Operand().Kind() == ast.IdentKind && s.Operand().AsIdent() == "session"
}

// entryPredicate compiles e, a predicate over the entry v, when it reads
// only v.tool, v.route and v.labels and string literals.
func entryPredicate(e ast.Expr, v string) (entryPred, bool) {
	switch e.Kind() {
	case ast.LiteralKind:
		b, ok := e.AsLiteral().(types.Bool)
		return func(*state.Entry) bool { return bool(b) }, ok
	case ast.CallKind:
	default:
		return nil, false
	}
	call := e.AsCall()
	args := call.Args()
	if call.IsMemberFunction() {
		return nil, false
	}
	switch fn := call.FunctionName(); {
	case fn == operators.LogicalNot && len(args) == 1:
		p, ok := entryPredicate(args[0], v)
		return func(x *state.Entry) bool { return !p(x) }, ok
	case (fn == operators.LogicalAnd || fn == operators.LogicalOr) && len(args) == 2:
		p, ok1 := entryPredicate(args[0], v)
		q, ok2 := entryPredicate(args[1], v)
		if fn == operators.LogicalAnd {
			return func(x *state.Entry) bool { return p(x) && q(x) }, ok1 && ok2
		}
		return func(x *state.Entry) bool { return p(x) || q(x) }, ok1 && ok2
	case (fn == operators.Equals || fn == operators.NotEquals) && len(args) == 2:
		field, lit := args[0], args[1]
		if _, isField := entryString(field, v); !isField {
			field, lit = lit, field
		}
		get, ok1 := entryString(field, v)
		want, ok2 := stringLiteral(lit)
		if fn == operators.Equals {
			return func(x *state.Entry) bool { return get(x) == want }, ok1 && ok2
		}
		return func(x *state.Entry) bool { return get(x) != want }, ok1 && ok2
	case fn == operators.In && len(args) == 2:
		// "label" in v.labels
		if want, ok := stringLiteral(args[0]); ok && isEntryField(args[1], v, "labels") {
			return func(x *state.Entry) bool { return slices.Contains(x.Labels, want) }, true
		}
		// v.tool in ["a", "b"]
		get, ok1 := entryString(args[0], v)
		set, ok2 := stringListLiteral(args[1])
		return func(x *state.Entry) bool { return slices.Contains(set, get(x)) }, ok1 && ok2
	}
	return nil, false
}

// entryString returns the getter of v.tool or v.route.
func entryString(e ast.Expr, v string) (func(*state.Entry) string, bool) {
	switch {
	case isEntryField(e, v, "tool"):
		return func(x *state.Entry) string { return x.Tool }, true
	case isEntryField(e, v, "route"):
		return func(x *state.Entry) string { return x.Route }, true
	}
	return nil, false
}

func isEntryField(e ast.Expr, v, field string) bool {
	if e.Kind() != ast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == field && s.Operand().Kind() == ast.IdentKind && s.Operand().AsIdent() == v
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func stringListLiteral(e ast.Expr) ([]string, bool) {
	if e.Kind() != ast.ListKind || len(e.AsList().OptionalIndices()) > 0 {
		return nil, false
	}
	var out []string
	for _, el := range e.AsList().Elements() {
		s, ok := stringLiteral(el)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
