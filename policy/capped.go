package policy

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// OPA looks its own builtins up before custom ones, so a size-capped builtin
// cannot be registered under the original name. Instead every call of an
// amplifying builtin in a policy is rewritten, before compilation, into a
// call of its capped twin cappedPrefix+name, which checks the size of the
// result from the operands and then runs the original implementation.
// Policies may not use the cappedPrefix namespace themselves.
const cappedRoot = "sigil_limited"

const cappedPrefix = cappedRoot + "."

// capped is one size-capped builtin: check returns a non-nil error when the
// call would exceed the evaluation's limits.
type capped struct {
	decl  *ast.Builtin
	check func(b *budget, ops []*ast.Term) error
}

// cappedBuiltins lists the amplifying builtins: those whose result can be
// far larger than their operands.
func cappedBuiltins() []capped {
	return []capped{
		{ast.NumbersRange, checkRange(false)},
		{ast.NumbersRangeStep, checkRange(true)},
		{ast.Split, checkSplit},
		{ast.Concat, checkConcat},
		{ast.Sprintf, checkSprintf},
		{ast.Replace, checkReplace},
		{ast.ReplaceN, checkReplaceN},
		{ast.RegexReplace, checkRegexReplace},
		{ast.JSONMarshal, checkMarshal(ast.JSONMarshal.Name, "", "")},
		{ast.JSONMarshalWithOptions, checkMarshalWithOptions},
		{ast.YAMLMarshal, checkMarshal(ast.YAMLMarshal.Name, "", "  ")},
		{ast.HexEncode, checkEncode(ast.HexEncode.Name, func(n int) int { return 2 * n })},
		{ast.Base64Encode, checkEncode(ast.Base64Encode.Name, base64Len)},
		{ast.Base64UrlEncode, checkEncode(ast.Base64UrlEncode.Name, base64Len)},
		{ast.Base64UrlEncodeNoPad, checkEncode(ast.Base64UrlEncodeNoPad.Name, base64Len)},
		{ast.URLQueryEncode, checkEncode(ast.URLQueryEncode.Name, func(n int) int { return 3 * n })},
		{ast.URLQueryEncodeObject, checkMarshal(ast.URLQueryEncodeObject.Name, "", "")},
	}
}

// cappedFunctions returns the rego options registering the capped twins.
func cappedFunctions() []func(*rego.Rego) {
	list := cappedBuiltins()
	opts := make([]func(*rego.Rego), 0, len(list))
	for _, c := range list {
		orig := topdown.GetBuiltin(c.decl.Name)
		if orig == nil {
			continue // not in this OPA build; the call is then left alone
		}
		opts = append(opts, rego.FunctionDyn(&rego.Function{
			Name:             cappedPrefix + c.decl.Name,
			Decl:             c.decl.Decl,
			Nondeterministic: c.decl.Nondeterministic,
		}, func(bctx rego.BuiltinContext, ops []*ast.Term) (*ast.Term, error) {
			b := budgetOf(bctx)
			if err := c.check(b, ops); err != nil {
				return nil, b.fail(err)
			}
			var out *ast.Term
			err := orig(bctx, ops, func(t *ast.Term) error { out = t; return nil })
			if reason := b.stop.Load(); err != nil && reason != nil {
				return nil, rego.NewHaltError(*reason)
			}
			return out, err
		}))
	}
	return opts
}

// rewriteCapped makes every call of an amplifying builtin in mod (and every
// with-modifier naming one) refer to its capped twin.
func rewriteCapped(mod *ast.Module) {
	names := make(map[string]ast.Ref)
	for _, c := range cappedBuiltins() {
		if topdown.GetBuiltin(c.decl.Name) != nil {
			names[c.decl.Name] = ast.MustParseRef(cappedPrefix + c.decl.Name)
		}
	}
	swap := func(t *ast.Term) {
		if t == nil {
			return
		}
		if ref, ok := t.Value.(ast.Ref); ok {
			if r, ok := names[ref.String()]; ok {
				t.Value = r.Copy()
			}
		}
	}
	ast.WalkExprs(mod, func(e *ast.Expr) bool {
		if terms, ok := e.Terms.([]*ast.Term); ok && len(terms) > 0 {
			swap(terms[0])
		}
		for _, w := range e.With {
			swap(w.Target)
			swap(w.Value)
		}
		return false
	})
	ast.WalkTerms(mod, func(t *ast.Term) bool {
		if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
			swap(call[0])
		}
		return false
	})
}

// uncap removes the capped prefix from a message, so that errors name the
// builtins the policy author wrote.
func uncap(s string) string { return strings.ReplaceAll(s, cappedPrefix, "") }

func tooLarge(name string, size, max int) error {
	return fmt.Errorf("%w: %s would return %d bytes, more than the limit of %d", ErrLimitExceeded, name, size, max)
}

// sizeOK reports whether size is within the output limit of b.
func sizeOK(b *budget, size int) bool {
	return b.limits.MaxOutputBytes <= 0 || size <= b.limits.MaxOutputBytes
}

// checkRange refuses numbers.range / numbers.range_step calls that would
// produce more numbers than there are evaluation steps left: generating
// each number costs a step anyway, and so the call fails before allocating.
func checkRange(withStep bool) func(*budget, []*ast.Term) error {
	return func(b *budget, ops []*ast.Term) error {
		x, err1 := builtins.BigIntOperand(ops[0].Value, 1)
		y, err2 := builtins.BigIntOperand(ops[1].Value, 2)
		if err1 != nil || err2 != nil {
			return nil // the original reports the operand error
		}
		name := ast.NumbersRange.Name
		step := big.NewInt(1)
		if withStep {
			name = ast.NumbersRangeStep.Name
			s, err := builtins.BigIntOperand(ops[2].Value, 3)
			if err != nil || s.Sign() <= 0 {
				return nil
			}
			step = s
		}
		n := new(big.Int).Sub(y, x)
		n.Abs(n).Quo(n, step).Add(n, big.NewInt(1))
		left := b.remaining()
		if n.IsInt64() && n.Int64() <= left {
			return nil
		}
		return fmt.Errorf("%w: %s(%v, %v) would produce %v numbers, more than the %d evaluation steps left",
			ErrLimitExceeded, name, ops[0].Value, ops[1].Value, n, max(left, 0))
	}
}

// checkSplit charges one step per element split would return.
func checkSplit(b *budget, ops []*ast.Term) error {
	s, ok1 := ops[0].Value.(ast.String)
	d, ok2 := ops[1].Value.(ast.String)
	if !ok1 || !ok2 {
		return nil
	}
	n := int64(strings.Count(string(s), string(d)) + 1)
	if d == "" {
		n = int64(utf8.RuneCountInString(string(s)))
	}
	if b.charge(n) {
		return nil
	}
	return fmt.Errorf("%w: split would return %d strings, more than the evaluation steps left", ErrLimitExceeded, n)
}

func checkConcat(b *budget, ops []*ast.Term) error {
	sep, ok := ops[0].Value.(ast.String)
	if !ok {
		return nil
	}
	var size, n int
	add := func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			size += len(s)
		}
		n++
	}
	switch c := ops[1].Value.(type) {
	case *ast.Array:
		c.Foreach(add)
	case ast.Set:
		c.Foreach(add)
	default:
		return nil
	}
	if n > 1 {
		size += (n - 1) * len(sep)
	}
	if !sizeOK(b, size) {
		return tooLarge(ast.Concat.Name, size, b.limits.MaxOutputBytes)
	}
	return nil
}

// fmtMaxWidth is the largest width or precision Go's fmt accepts.
const fmtMaxWidth = 1_000_000

// checkSprintf bounds the sprintf result by the format's length, its widths
// and precisions, and the size of the arguments each verb may print.
func checkSprintf(b *budget, ops []*ast.Term) error {
	format, ok := ops[0].Value.(ast.String)
	args, ok2 := ops[1].Value.(*ast.Array)
	if !ok || !ok2 {
		return nil
	}
	lim := b.limits.MaxOutputBytes
	if lim <= 0 {
		return nil
	}
	size, verbs, indexed := sprintfFormat(string(format))
	var total, largest int
	for i := range args.Len() {
		n, _ := jsonSize(args.Elem(i).Value, lim, "", "")
		total += n
		largest = max(largest, n)
	}
	if indexed || verbs > args.Len() {
		size += verbs * largest
	} else {
		size += total
	}
	if size > lim {
		return tooLarge(ast.Sprintf.Name, size, lim)
	}
	return nil
}

// sprintfFormat returns the length of format plus its widths and
// precisions, the number of verbs and whether explicit argument indexes
// ([n]) are used.
func sprintfFormat(format string) (size, verbs int, indexed bool) {
	size = len(format)
	number := func(i int) (int, int) {
		n := 0
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			n = min(n*10+int(format[i]-'0'), fmtMaxWidth)
			i++
		}
		return n, i
	}
	skipIndex := func(i int) int {
		if i < len(format) && format[i] == '[' {
			indexed = true
			if j := strings.IndexByte(format[i:], ']'); j >= 0 {
				return i + j + 1
			}
		}
		return i
	}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		if i < len(format) && format[i] == '%' {
			continue
		}
		for i < len(format) && strings.IndexByte("+-# 0", format[i]) >= 0 {
			i++
		}
		i = skipIndex(i)
		var w int
		if i < len(format) && format[i] == '*' {
			w, i = fmtMaxWidth, i+1
		} else {
			w, i = number(i)
		}
		size += w
		if i < len(format) && format[i] == '.' {
			i = skipIndex(i + 1)
			if i < len(format) && format[i] == '*' {
				w, i = fmtMaxWidth, i+1
			} else {
				w, i = number(i)
			}
			size += w
		}
		i = skipIndex(i)
		verbs++
	}
	return size, verbs, indexed
}

func checkReplace(b *budget, ops []*ast.Term) error {
	s, ok1 := ops[0].Value.(ast.String)
	old, ok2 := ops[1].Value.(ast.String)
	repl, ok3 := ops[2].Value.(ast.String)
	if !ok1 || !ok2 || !ok3 || len(repl) <= len(old) {
		return nil
	}
	size := len(s) + strings.Count(string(s), string(old))*(len(repl)-len(old))
	if !sizeOK(b, size) {
		return tooLarge(ast.Replace.Name, size, b.limits.MaxOutputBytes)
	}
	return nil
}

func checkReplaceN(b *budget, ops []*ast.Term) error {
	patterns, ok1 := ops[0].Value.(ast.Object)
	s, ok2 := ops[1].Value.(ast.String)
	lim := b.limits.MaxOutputBytes
	if !ok1 || !ok2 || lim <= 0 {
		return nil
	}
	keys := patterns.Keys()
	slices.SortFunc(keys, func(a, b *ast.Term) int { return ast.Compare(a, b) })
	pairs := make([]string, 0, 2*len(keys))
	minOld, maxNew := len(s)+1, 0
	for _, k := range keys {
		old, ok1 := k.Value.(ast.String)
		repl, ok2 := patterns.Get(k).Value.(ast.String)
		if !ok1 || !ok2 {
			return nil
		}
		pairs = append(pairs, string(old), string(repl))
		minOld, maxNew = min(minOld, len(old)), max(maxNew, len(repl))
	}
	matches := len(s) + 1
	if minOld > 0 {
		matches = len(s)/minOld + 1
	}
	if len(s)+matches*maxNew <= lim {
		return nil
	}
	w := &countingWriter{max: lim}
	if _, err := strings.NewReplacer(pairs...).WriteString(w, string(s)); err != nil {
		return tooLarge(ast.ReplaceN.Name, w.n, lim)
	}
	return nil
}

func checkRegexReplace(b *budget, ops []*ast.Term) error {
	s, ok1 := ops[0].Value.(ast.String)
	pattern, ok2 := ops[1].Value.(ast.String)
	value, ok3 := ops[2].Value.(ast.String)
	lim := b.limits.MaxOutputBytes
	if !ok1 || !ok2 || !ok3 || lim <= 0 {
		return nil
	}
	perMatch := len(value) + strings.Count(string(value), "$")*len(s)
	if len(s)+(len(s)+1)*perMatch <= lim {
		return nil
	}
	re, err := regexp.Compile(string(pattern))
	if err != nil {
		return nil
	}
	size := len(s)
	var buf []byte
	for _, m := range re.FindAllStringSubmatchIndex(string(s), -1) {
		buf = re.ExpandString(buf[:0], string(value), string(s), m)
		size += len(buf) - (m[1] - m[0])
		if size > lim {
			return tooLarge(ast.RegexReplace.Name, size, lim)
		}
	}
	return nil
}

func checkMarshal(name, prefix, indent string) func(*budget, []*ast.Term) error {
	return func(b *budget, ops []*ast.Term) error {
		lim := b.limits.MaxOutputBytes
		if lim <= 0 {
			return nil
		}
		if n, ok := jsonSize(ops[0].Value, lim, prefix, indent); !ok {
			return tooLarge(name, n, lim)
		}
		return nil
	}
}

func checkMarshalWithOptions(b *budget, ops []*ast.Term) error {
	prefix, indent := "", ""
	if opts, ok := ops[1].Value.(ast.Object); ok {
		pretty := true
		set := false
		if t := opts.Get(ast.StringTerm("pretty")); t != nil {
			p, _ := t.Value.(ast.Boolean)
			pretty, set = bool(p), true
		}
		if t := opts.Get(ast.StringTerm("prefix")); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				prefix, set = string(s), true
			}
		}
		indent = "\t"
		if t := opts.Get(ast.StringTerm("indent")); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				indent, set = string(s), true
			}
		}
		if !pretty || !set {
			prefix, indent = "", ""
		}
	}
	return checkMarshal(ast.JSONMarshalWithOptions.Name, prefix, indent)(b, ops)
}

func checkEncode(name string, size func(int) int) func(*budget, []*ast.Term) error {
	return func(b *budget, ops []*ast.Term) error {
		s, ok := ops[0].Value.(ast.String)
		if !ok {
			return nil
		}
		if n := size(len(s)); !sizeOK(b, n) {
			return tooLarge(name, n, b.limits.MaxOutputBytes)
		}
		return nil
	}
}

func base64Len(n int) int { return (n + 2) / 3 * 4 }

var errTooLarge = errors.New("too large")

// countingWriter counts what is written to it and fails past max.
type countingWriter struct {
	n, max int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n > w.max {
		return 0, errTooLarge
	}
	return len(p), nil
}

func (w *countingWriter) WriteString(s string) (int, error) {
	w.n += len(s)
	if w.n > w.max {
		return 0, errTooLarge
	}
	return len(s), nil
}

// jsonSize estimates the length of the JSON form of v, written with prefix
// and indent on each line when either is set. It stops counting as soon as
// the estimate exceeds max, and reports whether it stayed within max. The
// walk visits shared values once per occurrence, as serialising does, and
// so costs at most about max steps.
func jsonSize(v ast.Value, max int, prefix, indent string) (int, bool) {
	pretty := prefix != "" || indent != ""
	size := 0
	var walk func(v ast.Value, depth int) bool
	elem := func(t *ast.Term, depth int) bool {
		size++ // separator
		if pretty {
			size += 1 + len(prefix) + depth*len(indent)
		}
		return walk(t.Value, depth)
	}
	walk = func(v ast.Value, depth int) bool {
		switch x := v.(type) {
		case ast.Null:
			size += 4
		case ast.Boolean:
			size += 5
		case ast.Number:
			size += len(x)
		case ast.String:
			size += len(x) + 2
		case *ast.Array:
			size += 2
			for i := range x.Len() {
				if !elem(x.Elem(i), depth+1) {
					return false
				}
			}
		case ast.Set:
			size += 2
			stop := x.Until(func(t *ast.Term) bool { return !elem(t, depth+1) })
			if stop {
				return false
			}
		case ast.Object:
			size += 2
			stop := x.Until(func(k, t *ast.Term) bool {
				return !elem(k, depth+1) || !walk(t.Value, depth+1)
			})
			if stop {
				return false
			}
		default:
			size += len(v.String())
		}
		return size <= max
	}
	ok := walk(v, 0)
	return size, ok
}
