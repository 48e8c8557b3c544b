package initdata

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

const fixture = "testdata/initdata.toml"

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDigestFixture(t *testing.T) {
	body := readFixture(t)
	// Computed with coreutils sha256sum/sha384sum/sha512sum over the file.
	tests := map[string]string{
		SHA256: "c8238306a804fcdfd273275544db88f9f43417b08591dac9e7647af645c4aea4",
		SHA384: "ce282ee5007569753b3bedad6caddbacb16a020f896cc1e403a79a32806c562d4cd06c68c67a5b561742ec0f01153bb8",
		SHA512: "e3e9663310a185641b20d80892438c9040c1654aa24e5f80c882f15e99b492a2d62c61d7352a11a8e02c197d302069033ecc01e396a4f0545ba72b6c5eb7f6df",
	}
	for alg, want := range tests {
		got, err := Digest(alg, body)
		if err != nil {
			t.Fatalf("Digest(%s): %v", alg, err)
		}
		if hex.EncodeToString(got) != want {
			t.Errorf("Digest(%s) = %x, want %s", alg, got, want)
		}
	}
}

func TestDigestExactBytes(t *testing.T) {
	a, _ := Digest(SHA256, []byte("version = \"0.1.0\"\n"))
	b, _ := Digest(SHA256, []byte("version = \"0.1.0\"\r\n"))
	if hex.EncodeToString(a) == hex.EncodeToString(b) {
		t.Error("digest ignores a byte difference")
	}
}

func TestDigestRejects(t *testing.T) {
	for _, alg := range []string{"", "sha-384", "SHA384", "sm3", "sha1", "md5", "sha384 "} {
		if d, err := Digest(alg, []byte("x")); err == nil {
			t.Errorf("Digest(%q) = %x, want an error", alg, d)
		}
	}
}

func TestParseFixture(t *testing.T) {
	doc, err := Parse(readFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Version != "0.1.0" || doc.Algorithm != SHA384 {
		t.Errorf("version/algorithm = %q/%q", doc.Version, doc.Algorithm)
	}
	for _, k := range []string{"aa.toml", "cdh.toml", "policy.rego"} {
		if doc.Data[k] == "" {
			t.Errorf("data[%q] missing", k)
		}
	}
	if len(doc.Data) != 3 {
		t.Errorf("data has %d entries, want 3", len(doc.Data))
	}
}

func TestParseAlgorithms(t *testing.T) {
	for _, alg := range []string{SHA256, SHA384, SHA512} {
		doc, err := Parse([]byte("version = \"0.1.0\"\nalgorithm = \"" + alg + "\"\n[data]\nk = \"v\"\n"))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if doc.Algorithm != alg || doc.Data["k"] != "v" {
			t.Errorf("%s: got %+v", alg, doc)
		}
	}
}

func TestParseNoData(t *testing.T) {
	doc, err := Parse([]byte("version = \"0.1.0\"\nalgorithm = \"sha256\"\nextra = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Data == nil || len(doc.Data) != 0 {
		t.Errorf("Data = %#v, want empty map", doc.Data)
	}
	if c := doc.Claims(); c == nil || len(c) != 0 {
		t.Errorf("Claims = %#v, want empty map", c)
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"IANA algorithm name":   "version = \"0.1.0\"\nalgorithm = \"sha-384\"\n[data]\n",
		"uppercase algorithm":   "version = \"0.1.0\"\nalgorithm = \"SHA384\"\n[data]\n",
		"sm3 unsupported":       "version = \"0.1.0\"\nalgorithm = \"sm3\"\n[data]\n",
		"empty algorithm":       "version = \"0.1.0\"\nalgorithm = \"\"\n[data]\n",
		"missing algorithm":     "version = \"0.1.0\"\n[data]\n",
		"algorithm not string":  "version = \"0.1.0\"\nalgorithm = 384\n[data]\n",
		"missing version":       "algorithm = \"sha256\"\n[data]\n",
		"empty version":         "version = \"\"\nalgorithm = \"sha256\"\n[data]\n",
		"version not string":    "version = 1\nalgorithm = \"sha256\"\n[data]\n",
		"data not a table":      "version = \"0.1.0\"\nalgorithm = \"sha256\"\ndata = \"x\"\n",
		"data value not string": "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = 1\n",
		"data nested table":     "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data.k]\nx = \"y\"\n",
		"bad TOML":              "version = \"0.1.0\nalgorithm = \"sha256\"\n",
		"duplicate key":         "version = \"0.1.0\"\nversion = \"0.1.0\"\nalgorithm = \"sha256\"\n",
		"JSON, not TOML":        `{"version":"0.1.0","algorithm":"sha256","data":{}}`,
		"empty":                 "",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if doc, err := Parse([]byte(body)); err == nil {
				t.Errorf("Parse = %+v, want an error", doc)
			}
		})
	}
}

// get walks a path of map keys / slice indexes through decoded JSON values.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: %T is not an object", k, v)
			}
			v, ok = m[k]
			if !ok {
				t.Fatalf("missing key %q", k)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at [%d]: %T (len?) is not an array long enough", k, v)
			}
			v = a[k]
		}
	}
	return v
}

func TestClaimsFixture(t *testing.T) {
	doc, err := Parse(readFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	claims := doc.Claims()
	if _, ok := claims["policy.rego"]; ok {
		t.Error("policy.rego not removed")
	}
	if len(claims) != 3 {
		t.Errorf("claims keys = %v, want aa.toml, cdh.toml, agent_policy_claims", keys(claims))
	}

	// agent_policy_claims
	apc := claims[ClaimAgentPolicy]
	if got := get(t, apc, "containers", 1, "OCI", "Process", "Args", 0); got != "/opt/bitnami/scripts/nginx/entrypoint.sh" {
		t.Errorf("containers[1] Args[0] = %v", got)
	}
	containers := get(t, apc, "containers").([]any)
	if len(containers) != 2 {
		t.Fatalf("%d containers, want 2", len(containers))
	}
	var images []string
	var uids []json.Number
	for i := range containers {
		images = append(images, get(t, containers[i], "OCI", "Annotations", "io.kubernetes.cri.image-name").(string))
		uids = append(uids, get(t, containers[i], "OCI", "Process", "User", "UID").(json.Number))
	}
	if images[1] != "bitnami/nginx:latest" {
		t.Errorf("images = %v", images)
	}
	if !reflect.DeepEqual(uids, []json.Number{"65535", "1001"}) {
		t.Errorf("uids = %v", uids)
	}
	if got := get(t, apc, "request_defaults", "UpdateInterfaceRequest", "allow_raw_flags"); got != json.Number("128") {
		t.Errorf("allow_raw_flags = %#v", got)
	}
	if got := get(t, apc, "sandbox", "storages", 0, "fs_group"); got != nil {
		t.Errorf("fs_group = %#v, want nil", got)
	}

	// cdh.toml / aa.toml converted from TOML.
	if got := get(t, claims, "cdh.toml", "kbc", "name"); got != "cc_kbc" {
		t.Errorf("cdh.toml kbc.name = %v", got)
	}
	if got := get(t, claims, "cdh.toml", "image", "max_concurrent_layer_downloads_per_image"); got != json.Number("3") {
		t.Errorf("cdh.toml max_concurrent_layer_downloads_per_image = %#v", got)
	}
	if got := get(t, claims, "cdh.toml", "credentials"); !reflect.DeepEqual(got, []any{}) {
		t.Errorf("cdh.toml credentials = %#v", got)
	}
	if got := get(t, claims, "aa.toml", "token_configs", "kbs", "url"); got != "http://kbs.sigil.example:8080" {
		t.Errorf("aa.toml token_configs.kbs.url = %v", got)
	}

	// The claims must marshal to JSON.
	if _, err := json.Marshal(claims); err != nil {
		t.Errorf("claims do not marshal: %v", err)
	}
	// Claims must not alter the document.
	if _, ok := doc.Data["policy.rego"]; !ok {
		t.Error("Claims modified doc.Data")
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestClaimsTransforms(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		want string // JSON of the claims
	}{
		{
			name: "other keys untouched",
			data: map[string]string{"a.toml": "x = 1", "policy": "policy_data := {}"},
			want: `{"a.toml":"x = 1","policy":"policy_data := {}"}`,
		},
		{
			name: "TOML types",
			data: map[string]string{"aa.toml": `
i = -9007199254740993
f = 1.5
e = 1e300
inf = inf
nan = nan
b = true
odt = 1979-05-27T07:32:00-08:00
odtf = 1979-05-27T07:32:00.5Z
ldt = 1979-05-27T07:32:00
ld = 1979-05-27
lt = 07:32:00
arr = [1, "two", [3]]
[[tables]]
n = 1
[[tables]]
n = 2
[nested.deep]
s = "v"
`},
			want: `{"aa.toml":{"arr":[1,"two",[3]],"b":true,"e":1e+300,"f":1.5,"i":-9007199254740993,"inf":null,` +
				`"ld":"1979-05-27","ldt":"1979-05-27T07:32:00","lt":"07:32:00","nan":null,` +
				`"nested":{"deep":{"s":"v"}},"odt":"1979-05-27T07:32:00-08:00","odtf":"1979-05-27T07:32:00.5Z","tables":[{"n":1},{"n":2}]}}`,
		},
		{
			name: "cdh.toml that does not parse stays a string",
			data: map[string]string{"cdh.toml": "[kbc\nname = 1"},
			want: `{"cdh.toml":"[kbc\nname = 1"}`,
		},
		{
			name: "empty aa.toml becomes an empty object",
			data: map[string]string{"aa.toml": ""},
			want: `{"aa.toml":{}}`,
		},
		{
			name: "policy without policy_data stays",
			data: map[string]string{"policy.rego": "package agent_policy\ndefault allow := true\n"},
			want: `{"policy.rego":"package agent_policy\ndefault allow := true\n"}`,
		},
		{
			name: "policy_data tail extracted",
			data: map[string]string{"policy.rego": "package p\n\npolicy_data := {\"a\": [1, {\"b\": null}], \"u\": 18446744073709551615}\n\n"},
			want: `{"agent_policy_claims":{"a":[1,{"b":null}],"u":18446744073709551615}}`,
		},
		{
			name: "policy_data not last stays a string",
			data: map[string]string{"policy.rego": "policy_data := {\"a\": 1}\nallow := true\n"},
			want: `{"policy.rego":"policy_data := {\"a\": 1}\nallow := true\n"}`,
		},
		{
			name: "rego-only syntax (trailing comma) stays a string",
			data: map[string]string{"policy.rego": "policy_data := {\n\t\"a\": [\"x\",],\n}\n"},
			want: `{"policy.rego":"policy_data := {\n\t\"a\": [\"x\",],\n}\n"}`,
		},
		{
			name: "first occurrence is used",
			data: map[string]string{"policy.rego": "# policy_data := {\"a\": 1}\npolicy_data := {\"b\": 2}"},
			want: `{"policy.rego":"# policy_data := {\"a\": 1}\npolicy_data := {\"b\": 2}"}`,
		},
		{
			name: "marker spacing must match exactly",
			data: map[string]string{"policy.rego": "policy_data:={\"a\":1}"},
			want: `{"policy.rego":"policy_data:={\"a\":1}"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := &Document{Version: "0.1.0", Algorithm: SHA256, Data: tt.data}
			got, err := json.Marshal(doc.Claims())
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(tt.want)) {
				t.Errorf("claims = %s\nwant     %s", got, tt.want)
			}
		})
	}
}

// jsonEqual compares two JSON texts structurally, keeping numbers exact.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	dec := func(x []byte) any {
		d := json.NewDecoder(strings.NewReader(string(x)))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("bad JSON %s: %v", x, err)
		}
		return v
	}
	return reflect.DeepEqual(dec(a), dec(b))
}

func FuzzParse(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"cdh.toml\" = \"a = 1\"\n\"policy.rego\" = 'policy_data := {\"a\":[1]}'\n"))
	f.Add([]byte("version = \"0.1.0\"\nalgorithm = \"sha-384\"\n"))
	f.Add([]byte("[data]\n\"aa.toml\" = '''\nx = 1979-05-27\n'''\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := Parse(body)
		if err != nil {
			return
		}
		claims := doc.Claims()
		if _, err := json.Marshal(claims); err != nil {
			t.Fatalf("claims do not marshal: %v", err)
		}
		if _, err := Digest(doc.Algorithm, body); err != nil {
			t.Fatalf("parsed algorithm %q rejected by Digest: %v", doc.Algorithm, err)
		}
	})
}
