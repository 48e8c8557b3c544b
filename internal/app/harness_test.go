package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/internal/app"
)

// clock is a settable clock shared by the server under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKBS is a real Sigil KBS on a loopback port, configured like Trustee's
// integration tests: insecure HTTP, built-in AS, insecure_header_jwk, LocalFs
// storage, the resource plugin, admin JWTs from an Ed25519 key.
type testKBS struct {
	URL      string
	Dir      string
	AdminKey ed25519.PrivateKey
	Clock    *clock
	KBS      *app.KBS
}

type kbsOpts struct {
	adminMode  string // "" → AuthenticatedAuthorization
	acl        string // "" → ^/kbs/.+$ for role tester
	extraTOML  string
	topTOML    string // top-level keys, before any table
	brokerTOML string // extra keys of [attestation_service.attestation_token_broker]
	logger     *slog.Logger
}

func startKBS(t testing.TB, o kbsOpts) *testKBS {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPath := filepath.Join(dir, "admin.pub")
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	acl := o.acl
	if acl == "" {
		acl = "^/kbs/.+$"
	}
	adminTOML := fmt.Sprintf(`[admin]
authorization_mode = "AuthenticatedAuthorization"
[[admin.authentication.bearer_jwt.identity_providers]]
issuer = "issuer"
audience = "audience"
public_key_uri = %q
[[admin.authorization.regex_acl.acls]]
role = "tester"
allowed_endpoints = %q
`, pubPath, acl)
	if o.adminMode == "DenyAll" {
		adminTOML = "[admin]\nauthorization_mode = \"DenyAll\"\n"
	}
	cfgText := o.topTOML + fmt.Sprintf(`
[http_server]
sockets = ["127.0.0.1:0"]
insecure_http = true

[attestation_token]
insecure_header_jwk = true

[attestation_service]
type = "coco_as_builtin"
timeout = 5
[attestation_service.attestation_token_broker]
duration_min = 5
%s
[attestation_service.rvps_config]
type = "BuiltIn"

%s
[storage_backend]
storage_type = "LocalFs"
[storage_backend.backends.local_fs]
dir_path = %q

[[plugins]]
name = "resource"
%s`, o.brokerTOML, adminTOML, filepath.Join(dir, "storage"), o.extraTOML)
	cfg, _, err := config.Parse([]byte(cfgText), "toml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	clk := &clock{t: time.Now()}
	addr, k := serveConfig(t, cfg, app.Options{Now: clk.Now, Version: "test", Logger: o.logger})
	return &testKBS{URL: "http://" + addr, Dir: dir, AdminKey: priv, Clock: clk, KBS: k}
}

// serveConfig starts a KBS for cfg on its (loopback) sockets and stops it
// when the test ends. It returns the first bound address.
func serveConfig(t testing.TB, cfg *config.KBS, opts app.Options) (string, *app.KBS) {
	t.Helper()
	k, err := app.NewKBS(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("NewKBS: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- k.Serve(ctx, func(a []net.Addr) { addrc <- a[0] }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		k.Close()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		k.Close()
	})
	return addr.String(), k
}

// adminToken mints an admin JWT like Trustee's integration tests do.
func adminToken(t testing.TB, key ed25519.PrivateKey, claims map[string]any) string {
	t.Helper()
	base := map[string]any{"iss": "issuer", "role": "tester", "aud": []string{"audience"},
		"iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	body, _ := json.Marshal(base)
	signing := hdr + "." + base64.RawURLEncoding.EncodeToString(body)
	return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing)))
}

func (k *testKBS) token(t testing.TB) string { return adminToken(t, k.AdminKey, nil) }

// storageFiles lists every file under the LocalFs storage directory.
func (k *testKBS) storageFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	root := filepath.Join(k.Dir, "storage")
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func contains(err error, sub string) bool { return err != nil && strings.Contains(err.Error(), sub) }

func sampleProvider() client.EvidenceProvider { return sample.New(false) }
