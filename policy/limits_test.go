package policy

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// measure runs f and returns how long it took and how many bytes it
// allocated (TotalAlloc delta, all goroutines).
func measure(f func()) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	return d, after.TotalAlloc - before.TotalAlloc
}

const (
	maxLimitTime  = 2500 * time.Millisecond
	maxLimitAlloc = 256 << 20
)

// TestResourceBudget: a resource policy that would iterate, or build, a huge
// range fails fast with ErrLimitExceeded and without a large allocation.
func TestResourceBudget(t *testing.T) {
	claims := map[string]any{"submods": map[string]any{}}
	tests := []struct {
		name string
		body string
		opts Options
	}{
		{"some in range 1e8", `allow if { some x in numbers.range(1, 1e8); x < 0 }`, Options{}},
		{"count range 1e8", `allow if count(numbers.range(1, 1e8)) > 0`, Options{}},
		{"range_step", `allow if count(numbers.range_step(-1e12, 1e12, 3)) > 0`, Options{}},
		{"every over range", `allow if every x in numbers.range(1, 1e8) { x > 0 }`, Options{}},
		{"nested loops within the range cap", `allow if count([1 | some x in numbers.range(1, 1000); some y in numbers.range(1, 1000)]) > 0`, Options{}},
		{"range in a helper rule", "xs := numbers.range(1, 1e8)\nallow if count(xs) > 1", Options{}},
		{"cidr_expand", `allow if count(net.cidr_expand("10.0.0.0/8")) > 0`, Options{}},
		{"split", `allow if count(split(concat("", [s | some _ in numbers.range(1, 1000); s := "abcdefghij"]), "")) > 0`, Options{Limits: Limits{MaxSteps: 5000}}},
		{"timeout", `allow if count([1 | some x in numbers.range(1, 3000); some y in numbers.range(1, 3000)]) > 0`,
			Options{Limits: Limits{Timeout: 50 * time.Millisecond, MaxSteps: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompileResourceWith("package policy\nimport rego.v1\ndefault allow := false\n"+tt.body+"\n", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			d, alloc := measure(func() { ok, err = p.Allow(context.Background(), claims, resourceReq) })
			if !errors.Is(err, ErrLimitExceeded) || ok {
				t.Fatalf("allow = %v, err = %v; want ErrLimitExceeded", ok, err)
			}
			if d > maxLimitTime || alloc > maxLimitAlloc {
				t.Errorf("took %v and allocated %d MiB", d, alloc>>20)
			}
			t.Logf("%v, %d KiB: %v", d.Round(time.Millisecond), alloc>>10, err)
		})
	}
}

// sharedLists returns rules x0 … x<n>, where x<i> is a list holding x<i-1>
// twice: small in memory, but the JSON form of x<n> has 2^(n+1) strings.
// (n is kept small: OPA's type checker also walks the nesting.)
func sharedLists(n int) string {
	var sb strings.Builder
	sb.WriteString("x0 := [\"abcdefghij\", \"abcdefghij\"]\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "x%d := [x%d, x%d]\n", i, i-1, i-1)
	}
	return sb.String()
}

// TestAppraisalBudget: the same for appraisal policies.
func TestAppraisalBudget(t *testing.T) {
	for name, rules := range map[string]string{
		"range 3e6":      `hardware := 2 if count(numbers.range(1, 3e6)) > 0`,
		"range 1e8":      `hardware := 2 if { some x in numbers.range(1, 1e8); x == 0 }`,
		"result too big": sharedLists(20) + "hardware := 2\nextensions := [{\"name\": \"x\", \"key\": 1, \"value\": x20}]",
	} {
		t.Run(name, func(t *testing.T) {
			p := mustAppraisal(t, "p", "package policy\nimport rego.v1\ndefault hardware := 97\ntrust_claims := {\"hardware\": hardware}\n"+rules+"\n")
			var err error
			d, alloc := measure(func() { _, err = p.Evaluate(context.Background(), map[string]any{}, nil, false) })
			if !errors.Is(err, ErrLimitExceeded) {
				t.Fatalf("err = %v, want ErrLimitExceeded", err)
			}
			if d > maxLimitTime || alloc > maxLimitAlloc {
				t.Errorf("took %v and allocated %d MiB", d, alloc>>20)
			}
			t.Logf("%v, %d KiB: %v", d.Round(time.Millisecond), alloc>>10, err)
		})
	}
}

// TestCappedBuiltins: each amplifying builtin is refused past
// MaxOutputBytes, and gives OPA's result below it.
func TestCappedBuiltins(t *testing.T) {
	const limit = 1000
	opts := Options{Limits: Limits{MaxOutputBytes: limit}}
	s300 := `concat("", [s | some _ in numbers.range(1, 300); s := "a"])` // 300 bytes
	tests := []struct {
		name  string
		big   string // an expression whose result exceeds limit
		small string // the same builtin within the limit
		want  string // the JSON of small
	}{
		{"concat", `concat("", [s | some _ in numbers.range(1, 300); s := "abcd"])`, `concat("-", ["a", "b"])`, `"a-b"`},
		{"sprintf width", `sprintf("%2000d", [1])`, `sprintf("%5d|%s", [1, "x"])`, `"    1|x"`},
		{"sprintf args", fmt.Sprintf(`sprintf("%%s%%s%%s%%s", [%[1]s, %[1]s, %[1]s, %[1]s])`, s300), `sprintf("%v", [[1, "a"]])`, `"[1, \"a\"]"`},
		{"replace", fmt.Sprintf(`replace(%s, "a", "bbbb")`, s300), `replace("aXa", "a", "bb")`, `"bbXbb"`},
		{"replace empty old", fmt.Sprintf(`replace(%s, "", "bbbb")`, s300), `replace("ab", "", "-")`, `"-a-b-"`},
		{"strings.replace_n", fmt.Sprintf(`strings.replace_n({"a": "bbbb"}, %s)`, s300), `strings.replace_n({"a": "1", "b": "2"}, "ab")`, `"12"`},
		{"regex.replace", fmt.Sprintf(`regex.replace(%s, "a", "bbbb")`, s300), `regex.replace("a1b2", "[0-9]", "<$0>")`, `"a<1>b<2>"`},
		{"regex.replace expansion", fmt.Sprintf(`regex.replace(%s, "(a)", "$1$1$1$1")`, s300), `regex.replace("ab", "(a)", "$1$1")`, `"aab"`},
		{"json.marshal", `json.marshal([s | some _ in numbers.range(1, 300); s := "ab"])`, `json.marshal({"a": [1]})`, `"{\"a\":[1]}"`},
		{"json.marshal_with_options", `json.marshal_with_options([1, 2, 3, 4], {"indent": "` + strings.Repeat("x", 300) + `"})`,
			`json.marshal_with_options([1], {"indent": " "})`, `"[\n 1\n]"`},
		{"yaml.marshal", `yaml.marshal([s | some _ in numbers.range(1, 300); s := "ab"])`, `yaml.marshal(["a"])`, `"- a\n"`},
		{"hex.encode", fmt.Sprintf(`hex.encode(concat("", [%[1]s, %[1]s]))`, s300), `hex.encode("a")`, `"61"`},
		{"base64.encode", fmt.Sprintf(`base64.encode(concat("", [%[1]s, %[1]s, %[1]s]))`, s300), `base64.encode("a")`, `"YQ=="`},
		{"base64url.encode", fmt.Sprintf(`base64url.encode(concat("", [%[1]s, %[1]s, %[1]s]))`, s300), `base64url.encode("a")`, `"YQ=="`},
		{"base64url.encode_no_pad", fmt.Sprintf(`base64url.encode_no_pad(concat("", [%[1]s, %[1]s, %[1]s]))`, s300), `base64url.encode_no_pad("a")`, `"YQ"`},
		{"urlquery.encode", fmt.Sprintf(`urlquery.encode(replace(concat("", [%[1]s, %[1]s]), "a", "/"))`, s300), `urlquery.encode("a b")`, `"a+b"`},
		{"urlquery.encode_object", fmt.Sprintf(`urlquery.encode_object({"a": %[1]s, "b": %[1]s, "c": %[1]s, "d": %[1]s})`, s300), `urlquery.encode_object({"a": "b"})`, `"a=b"`},
		{"shared structure", "json.marshal(x8)", `json.marshal(x0)`, `"[\"abcdefghij\",\"abcdefghij\"]"`},
	}
	helpers := sharedLists(8)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompileResourceWith("package policy\nimport rego.v1\n"+helpers+"allow if { x := "+tt.big+"; count(x) > 0 }\n", opts)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := p.Allow(context.Background(), nil, resourceReq)
			if !errors.Is(err, ErrLimitExceeded) || ok {
				t.Fatalf("big: allow = %v, err = %v; want ErrLimitExceeded", ok, err)
			}
			if strings.Contains(err.Error(), cappedRoot) {
				t.Errorf("error names the internal builtin: %v", err)
			}
			p, err = CompileResourceWith("package policy\nimport rego.v1\n"+helpers+"allow if "+tt.small+" == "+tt.want+"\n", opts)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := p.Allow(context.Background(), nil, resourceReq); err != nil || !ok {
				t.Fatalf("small: allow = %v, %v", ok, err)
			}
		})
	}
}

// TestLimitsOff: negative limits switch the checks off.
func TestLimitsOff(t *testing.T) {
	p, err := CompileResourceWith("package policy\nimport rego.v1\nallow if count(numbers.range(1, 300000)) == 300000\nallow if count(sprintf(\"%2000000d\", [1])) > 0\n",
		Options{Limits: Limits{Timeout: -1, MaxSteps: -1, MaxOutputBytes: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Allow(context.Background(), nil, resourceReq); err != nil || !ok {
		t.Fatalf("allow = %v, %v", ok, err)
	}
}

// TestCallerCancellation: a caller's cancelled context is reported as such,
// not as a limit.
func TestCallerCancellation(t *testing.T) {
	p := mustResource(t, "package policy\nimport rego.v1\nallow if count(numbers.range(1, 100000)) > 0\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Allow(ctx, nil, resourceReq)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestDisabledBuiltins: builtins that reach outside the engine make both
// kinds of policy fail to compile, with a message naming them, unless
// AllowNetwork; opa.runtime and the reserved namespace are always refused.
func TestDisabledBuiltins(t *testing.T) {
	tests := []struct {
		name     string
		expr     string
		network  bool // compiles with AllowNetwork
		wantText string
	}{
		{"http.send", `http.send({"method": "GET", "url": "http://169.254.169.254/"}).status_code == 200`, true, "http.send is disabled"},
		{"net.lookup_ip_addr", `count(net.lookup_ip_addr("example.com")) > 0`, true, "net.lookup_ip_addr is disabled"},
		{"json.match_schema", `json.match_schema({}, {"$ref": "file:///etc/passwd"})[0]`, true, "json.match_schema is disabled"},
		{"json.verify_schema", `json.verify_schema({"$ref": "http://example.com/s.json"})[0]`, true, "json.verify_schema is disabled"},
		{"nested call", `count([x | x := http.send({"method": "GET", "url": "http://x/"})]) > 0`, true, "http.send is disabled"},
		{"opa.runtime", `opa.runtime().env.HOME != ""`, false, "opa.runtime is disabled"},
		{"reserved namespace", `sigil_limited.concat("", ["a"]) == "a"`, false, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "package policy\nimport rego.v1\ndefault allow := false\nallow if " + tt.expr + "\ntrust_claims := {\"hardware\": 2} if " + tt.expr + "\n"
			_, errR := CompileResource(text)
			_, errA := CompileAppraisal("p", text)
			for kind, err := range map[string]error{"resource": errR, "appraisal": errA} {
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("%s: err = %v, want one containing %q", kind, err, tt.wantText)
				}
			}
			_, errR = CompileResourceWith(text, Options{AllowNetwork: true})
			_, errA = CompileAppraisalWith("p", text, Options{AllowNetwork: true})
			if tt.network && (errR != nil || errA != nil) {
				t.Errorf("with AllowNetwork: %v / %v", errR, errA)
			}
			if !tt.network && (errR == nil || errA == nil) {
				t.Error("compiled with AllowNetwork")
			}
		})
	}
}

// TestUploadValidation: the rules a policy must follow to be stored, and
// the reasons given.
func TestUploadValidation(t *testing.T) {
	head := "package policy\nimport rego.v1\n"
	appraisal := []struct {
		name, text, wantErr string
	}{
		{"default policy", DefaultAppraisalPolicies()["default_cpu"], ""},
		{"v0 dialect", "package policy\ndefault hardware = 97\nhardware = 2 { input.sample }\ntrust_claims = {\"hardware\": hardware}\n", ""},
		{"partial object", head + "trust_claims[\"hardware\"] := 2\n", ""},
		{"ref head", head + "trust_claims.hardware := 2\n", ""},
		{"no trust_claims", head + "hardware := 2\n", "defines no trust_claims rule"},
		{"wrong package", "package other\ntrust_claims := {\"hardware\": 2}\n", "want package policy"},
		{"syntax", head + "trust_claims := {", "parse"},
		{"unknown claim", head + "trust_claims := {\"vibes\": 2}\n", `unknown trust claim "vibes"`},
		{"snake case claim", head + "trust_claims := {\"instance_identity\": 2}\n", `unknown trust claim "instance_identity"`},
		{"unknown claim in partial object", head + "trust_claims[\"vibes\"] := 2\n", `unknown trust claim "vibes"`},
		{"unknown claim in ref head", head + "trust_claims.vibes := 2\n", `unknown trust claim "vibes"`},
		{"unknown claim in else", head + "trust_claims := {\"hardware\": 2} if input.x\nelse := {\"vibes\": 3}\n", `unknown trust claim "vibes"`},
		{"set", head + "trust_claims contains \"hardware\"\n", "not a set"},
		{"http.send", head + "trust_claims := {\"hardware\": http.send({}).status_code}\n", "http.send is disabled"},
	}
	for _, tt := range appraisal {
		t.Run("appraisal/"+tt.name, func(t *testing.T) {
			_, err := ValidateAppraisal("default_cpu", tt.text, Options{})
			checkErr(t, err, tt.wantErr)
		})
	}
	resource := []struct {
		name, text, wantErr string
	}{
		{"default", ResourceDefault, ""},
		{"deny all", ResourceDenyAll, ""},
		{"no allow", head + "allowed := true\n", "defines no allow rule"},
		{"wrong package", "package kbs\nallow := true\n", "want package policy"},
		{"disabled builtin", head + "allow if net.lookup_ip_addr(\"x\")\n", "net.lookup_ip_addr is disabled"},
	}
	for _, tt := range resource {
		t.Run("resource/"+tt.name, func(t *testing.T) {
			_, err := CompileResource(tt.text)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("err = %v, want one containing %q", err, want)
	case err != nil && strings.Contains(err.Error(), cappedRoot):
		t.Errorf("error names the internal builtin: %v", err)
	}
}

// TestCompileErrorNamesBuiltin: a type error in a call of a capped builtin
// names the builtin as written.
func TestCompileErrorNamesBuiltin(t *testing.T) {
	_, err := CompileResource("package policy\nimport rego.v1\nallow if count(numbers.range(1)) > 0\n")
	if err == nil || !strings.Contains(err.Error(), "numbers.range") || strings.Contains(err.Error(), cappedRoot) {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkLimitsOverhead compares the default policies' evaluation with
// the default limits against the prepared query evaluated bare (no budget,
// no deadline, OPA's own cancellation goroutine), as before the limits.
func BenchmarkLimitsOverhead(b *testing.B) {
	in := loadJSON(b, "tdx_input.json")
	rv := newRV(tdxRVs)
	p := defaultPolicy(b, "default_cpu")
	b.Run("appraisal/limits", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Evaluate(context.Background(), in, rv, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appraisal/bare", func(b *testing.B) {
		ctx := context.WithValue(context.Background(), rvContextKey{}, ReferenceValues(rv))
		b.ReportAllocs()
		for b.Loop() {
			val, err := ast.InterfaceToValue(in)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.pq.Eval(ctx, rego.EvalParsedInput(val)); err != nil {
				b.Fatal(err)
			}
		}
	})
	claims := attest(b, rv, evidence{"cpu", p, in})
	r := mustResource(b, ResourceDefault)
	b.Run("resource/limits", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Allow(context.Background(), claims, resourceReq); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resource/bare", func(b *testing.B) {
		// What Allow does, minus evaluation(): the input document is
		// rebuilt on each iteration as Allow does.
		b.ReportAllocs()
		for b.Loop() {
			in, err := resourceInput(claims, resourceReq)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.pq.Eval(context.Background(), rego.EvalParsedInput(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestNestingBounded: OPA's type checker is exponential in the nesting of
// composite values; such a policy is refused before it is compiled.
func TestNestingBounded(t *testing.T) {
	deep := "package policy\nimport rego.v1\nx := " + strings.Repeat("[", 30) + "1" + strings.Repeat("]", 30) + "\ndefault allow := false\n"
	start := time.Now()
	if _, err := CompileResource(deep); err == nil || !strings.Contains(err.Error(), "nest deeper") {
		t.Errorf("deeply nested policy: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %v", d)
	}
	// Brackets inside strings and comments do not count.
	ok := "package policy\nimport rego.v1\n# " + strings.Repeat("[", 30) + "\nmsg := \"" + strings.Repeat("{", 30) + "\"\nraw := `" + strings.Repeat("(", 30) + "`\ndefault allow := false\n"
	if _, err := CompileResource(ok); err != nil {
		t.Errorf("brackets in strings and comments: %v", err)
	}
}
