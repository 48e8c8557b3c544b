package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/internal/app"
)

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		t.Fatal(err)
	}
}

func newCert(t *testing.T, tmpl, parent *x509.Certificate, pub any, signer any) (*x509.Certificate, []byte) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, der
}

// trusteeWorkDir creates the ./work files of Trustee's kbs/test Makefile:
// HTTPS key and cert, an RSA CA, an EC token key with its chain, and the
// Ed25519 admin key. It returns the admin private key.
func trusteeWorkDir(t *testing.T, work string) ed25519.PrivateKey {
	now := time.Now()
	httpsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	httpsTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	_, httpsDER := newCert(t, httpsTmpl, httpsTmpl, &httpsKey.PublicKey, httpsKey)
	k8, _ := x509.MarshalPKCS8PrivateKey(httpsKey)
	writePEM(t, filepath.Join(work, "https.key"), "PRIVATE KEY", k8)
	writePEM(t, filepath.Join(work, "https.crt"), "CERTIFICATE", httpsDER)

	caKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"CNCF"}, OrganizationalUnit: []string{"CoCo"}, CommonName: "KBS-compose-root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca, caDER := newCert(t, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	writePEM(t, filepath.Join(work, "ca-cert.pem"), "CERTIFICATE", caDER)
	tokKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, tokDER := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "CoCo-AS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}, ca, &tokKey.PublicKey, caKey)
	sec1, _ := x509.MarshalECPrivateKey(tokKey)
	writePEM(t, filepath.Join(work, "token.key"), "EC PRIVATE KEY", sec1)
	writePEM(t, filepath.Join(work, "token-cert-chain.pem"), "CERTIFICATE", tokDER)
	writePEM(t, filepath.Join(work, "token-cert-chain.pem"), "CERTIFICATE", caDER)

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(pub)
	writePEM(t, filepath.Join(work, "kbs.pem"), "PUBLIC KEY", spki)
	return priv
}

func loadTrusteeConfig(t *testing.T, name, root string) *config.KBS {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "testdata", "trustee", name))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		`"./work/`, `"`+root+`/work/`,
		`"/opt/confidential-containers/`, `"`+root+`/opt/`,
		`"/tmp/integration/`, `"`+root+`/integration/`,
		`127.0.0.1:8080`, `127.0.0.1:0`, `127.0.0.1:8081`, `127.0.0.1:0`, `0.0.0.0:8080`, `127.0.0.1:0`,
	).Replace(string(b))
	cfg, _, err := config.Parse([]byte(text), "toml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

// TestTrusteeBgcheck reproduces Trustee's kbs/test "test-bgcheck" e2e from
// its own config file: HTTPS with a self-signed certificate, the built-in AS
// signing with a CA-issued key, the KBS trusting that CA, an EdDSA admin
// token (issuer "issuer", audience "kbs"), and a resource file placed on
// disk in Trustee's LocalFs layout.
func TestTrusteeBgcheck(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	adminKey := trusteeWorkDir(t, filepath.Join(root, "work"))
	cfg := loadTrusteeConfig(t, "e2e-kbs.toml", root)
	addr, _ := serveConfig(t, cfg, app.Options{Version: "test"})
	url := "https://" + addr

	secret := []byte("0123456789abcdef")
	repo := filepath.Join(root, "work", "storage", "repository")
	if err := os.MkdirAll(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, `one\x2Ftwo\x2Fthree`), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(filepath.Join(root, "work", "https.crt"))
	tok := adminToken(t, adminKey, map[string]any{"role": "admin", "aud": []string{"kbs"}})
	adm, err := client.NewAdmin(url, tok, client.Options{CertPEM: certPEM})
	if err != nil {
		t.Fatal(err)
	}
	// A Rego v0 policy, as Trustee's e2e test writes it.
	pol := `package policy
default allow = false
allow {
	data.plugin == "resource"
	data["resource-path"][0] == "one"
	data["resource-path"][1] == "two"
	data["resource-path"][2] == "three"
	input.submods.cpu0["ear.veraison.annotated-evidence"]["sample"]
}`
	if err := adm.SetResourcePolicy(ctx, []byte(pol)); err != nil {
		t.Fatal(err)
	}
	g, err := client.NewRCAR(url, sample.New(false), client.Options{CertPEM: certPEM})
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.GetResource(ctx, "one/two/three")
	if err != nil || string(got) != string(secret) {
		t.Fatalf("get-resource: %q %v", got, err)
	}
	// The token carries an x5c chain, so it verifies against the CA only.
	if _, err := g.GetResource(ctx, "one/two/four"); err == nil {
		t.Fatal("policy-excluded path released")
	}
}

// TestTrusteeShippedConfigsStart: Trustee's shipped single-node configs
// start a working Sigil KBS after only their file paths are adjusted; the
// gRPC-AS ones are refused with a clear error.
func TestTrusteeShippedConfigsStart(t *testing.T) {
	for _, c := range []struct{ file, wantErr string }{
		{"kbs-config.toml", ""},
		{"integration-kbs.toml", ""},
		{"kbs-config-grpc.toml", "coco_as_grpc"},
		{"docker-compose-kbs-config.toml", "coco_as_grpc"},
	} {
		t.Run(c.file, func(t *testing.T) {
			root := t.TempDir()
			pub, _, _ := ed25519.GenerateKey(rand.Reader)
			spki, _ := x509.MarshalPKIXPublicKey(pub)
			writePEM(t, filepath.Join(root, "integration", "admin-public.pem"), "PUBLIC KEY", spki)
			writePEM(t, filepath.Join(root, "opt", "kbs", "user-keys", "public.pub"), "PUBLIC KEY", spki)
			cfg := loadTrusteeConfig(t, c.file, root)
			k, err := app.NewKBS(context.Background(), cfg, app.Options{})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an error about %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k.Close()
		})
	}
}
