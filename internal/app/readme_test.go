package app_test

import (
	"os"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/config"
)

// TestReadmeReplicaConfig: the replica configuration the README gives
// parses, selects the shared backends, and draws no warning.
func TestReadmeReplicaConfig(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Running several replicas")
	if !ok {
		t.Fatal("README has no replicas section")
	}
	_, rest, ok = strings.Cut(rest, "```toml\n")
	if !ok {
		t.Fatal("replicas section has no TOML block")
	}
	block, _, _ := strings.Cut(rest, "```")
	cfg, warnings, err := config.Parse([]byte(block), "toml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if cfg.StorageBackend.StorageType != config.StoragePostgres || cfg.SessionStorage() != config.StorageRedis ||
		cfg.AttestationToken.InsecureHeaderJWK || len(cfg.AttestationToken.TrustedCertsPaths) != 1 {
		t.Errorf("replica config: storage %s, sessions %s, insecure_header_jwk %v", cfg.StorageBackend.StorageType, cfg.SessionStorage(), cfg.AttestationToken.InsecureHeaderJWK)
	}
}
