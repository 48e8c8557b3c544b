package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/internal/app"
)

func TestBootstrap(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "data")
		b, err := app.RunBootstrap(app.BootstrapOptions{DataDir: dir, Listen: "127.0.0.1:0", InsecureHTTP: insecure})
		if err != nil {
			t.Fatal(err)
		}
		cfg, warnings, err := config.Load(b.ConfigPath, func(string) string { return "" })
		if err != nil || len(warnings) != 0 {
			t.Fatalf("generated config: %v %v", err, warnings)
		}
		if cfg.Admin.AuthorizationMode != config.AuthenticatedAuthorization || cfg.AttestationToken.InsecureHeaderJWK ||
			cfg.HTTPServer.InsecureHTTP != insecure || cfg.SessionStorage() != config.StorageMemory {
			t.Fatalf("insecure defaults in %+v", cfg)
		}
		info, err := os.Stat(b.AdminKeyPath)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("admin key mode: %v %v", info.Mode(), err)
		}
		tok1, _ := os.ReadFile(b.AdminTokenPath)
		// A second start reuses every key.
		b2, err := app.RunBootstrap(app.BootstrapOptions{DataDir: dir, Listen: "127.0.0.1:0", InsecureHTTP: insecure})
		if err != nil || len(b2.Created) != 0 {
			t.Fatalf("second start created %v (%v)", b2.Created, err)
		}
		tok2, _ := os.ReadFile(b2.AdminTokenPath)
		if string(tok1) != string(tok2) {
			t.Fatal("admin token changed on restart")
		}
	}
	if _, err := app.RunBootstrap(app.BootstrapOptions{DataDir: t.TempDir(), Listen: "nonsense"}); err == nil {
		t.Fatal("bad listen address accepted")
	}
}

// TestBootstrapRefusesWritableByOthers: keys that others can write could
// have been planted; a zero-config start refuses them.
func TestBootstrapRefusesWritableByOthers(t *testing.T) {
	for _, target := range []string{"", "admin", "admin/private.key", "token/token.key", "storage"} {
		dir := filepath.Join(t.TempDir(), "data")
		b, err := app.RunBootstrap(app.BootstrapOptions{DataDir: dir, Listen: "127.0.0.1:0", InsecureHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(b.DataDir, target)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, info.Mode().Perm()|0o022); err != nil {
			t.Fatal(err)
		}
		_, err = app.RunBootstrap(app.BootstrapOptions{DataDir: dir, Listen: "127.0.0.1:0", InsecureHTTP: true})
		if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("%s writable by others: err = %v", target, err)
		}
		if err := os.Chmod(path, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		if _, err := app.RunBootstrap(app.BootstrapOptions{DataDir: dir, Listen: "127.0.0.1:0", InsecureHTTP: true}); err != nil {
			t.Errorf("%s fixed: %v", target, err)
		}
	}
}
