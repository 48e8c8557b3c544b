package app

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BootstrapOptions configures the zero-config start of `sigil kbs`.
type BootstrapOptions struct {
	DataDir      string
	Listen       string // host:port
	InsecureHTTP bool
	Now          func() time.Time
	Rand         io.Reader
}

// Bootstrap describes what the zero-config start created or reused.
type Bootstrap struct {
	DataDir        string
	ConfigPath     string
	AdminTokenPath string
	AdminKeyPath   string
	TLSCertPath    string // "" with InsecureHTTP
	Created        []string
}

// Files under the data directory.
const (
	adminKeyFile   = "admin/private.key"
	adminPubFile   = "admin/public.pub"
	adminTokenFile = "admin/admin-token"
	tokenCAKey     = "token/ca.key"
	tokenCACert    = "token/ca.pem"
	tokenKeyFile   = "token/token.key"
	tokenChainFile = "token/token-chain.pem"
	tlsKeyFile     = "tls/key.pem"
	tlsCertFile    = "tls/cert.pem"
	configFile     = "kbs-config.toml"
	storageDir     = "storage"
)

// RunBootstrap creates, on first start, everything the all-in-one KBS needs
// under opts.DataDir — an Ed25519 admin key pair and a long-lived admin
// token, a CA-anchored EAR signing key, a self-signed TLS certificate
// (unless InsecureHTTP) — and (re)writes kbs-config.toml in Trustee's format
// from the options. Existing keys are reused, never overwritten.
func RunBootstrap(opts BootstrapOptions) (*Bootstrap, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8080"
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", opts.Listen, err)
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	b := &Bootstrap{DataDir: dir}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, d := range []string{"", "admin", "token", "tls", storageDir} {
		if err := os.MkdirAll(p(d), 0o700); err != nil {
			return nil, err
		}
	}
	// Keys that someone else could have planted or could replace are
	// refused: an admin key or token-signing key there would hand out the
	// secrets.
	if err := checkNotWritableByOthers(dir, []string{"", "admin", "token", "tls", storageDir},
		[]string{adminKeyFile, adminPubFile, adminTokenFile, tokenCAKey, tokenCACert, tokenKeyFile, tokenChainFile, tlsKeyFile, tlsCertFile, configFile}); err != nil {
		return nil, err
	}
	now := opts.Now()

	// Admin key pair and token.
	if !exists(p(adminKeyFile)) {
		pub, priv, err := ed25519.GenerateKey(opts.Rand)
		if err != nil {
			return nil, err
		}
		if err := writePrivateKey(p(adminKeyFile), priv); err != nil {
			return nil, err
		}
		if err := writePublicKey(p(adminPubFile), pub); err != nil {
			return nil, err
		}
		b.Created = append(b.Created, p(adminKeyFile), p(adminPubFile))
		_ = os.Remove(p(adminTokenFile)) // a token of an older key is useless
	}
	if !exists(p(adminTokenFile)) {
		priv, err := readPrivateKey(p(adminKeyFile))
		if err != nil {
			return nil, err
		}
		edKey, ok := priv.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s is not an Ed25519 key", p(adminKeyFile))
		}
		tok, err := mintAdminToken(edKey, now)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(p(adminTokenFile), []byte(tok+"\n"), 0o600); err != nil {
			return nil, err
		}
		b.Created = append(b.Created, p(adminTokenFile))
	}

	// EAR signing key with a local CA the KBS trusts.
	if !exists(p(tokenChainFile)) || !exists(p(tokenKeyFile)) {
		caKey, err := ecdsa.GenerateKey(elliptic.P256(), opts.Rand)
		if err != nil {
			return nil, err
		}
		caTmpl := &x509.Certificate{
			SerialNumber: serial(opts.Rand), Subject: pkix.Name{Organization: []string{"Sigil"}, CommonName: "Sigil token CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		}
		caDER, err := x509.CreateCertificate(opts.Rand, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		caCert, _ := x509.ParseCertificate(caDER)
		tokKey, err := ecdsa.GenerateKey(elliptic.P256(), opts.Rand)
		if err != nil {
			return nil, err
		}
		leafTmpl := &x509.Certificate{
			SerialNumber: serial(opts.Rand), Subject: pkix.Name{Organization: []string{"Sigil"}, CommonName: "Sigil Attestation Service"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		}
		leafDER, err := x509.CreateCertificate(opts.Rand, leafTmpl, caCert, &tokKey.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		if err := writePrivateKey(p(tokenCAKey), caKey); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(p(tokenCACert), pemBlock("CERTIFICATE", caDER), 0o644); err != nil {
			return nil, err
		}
		if err := writePrivateKey(p(tokenKeyFile), tokKey); err != nil {
			return nil, err
		}
		chain := append(pemBlock("CERTIFICATE", leafDER), pemBlock("CERTIFICATE", caDER)...)
		if err := writeFileAtomic(p(tokenChainFile), chain, 0o644); err != nil {
			return nil, err
		}
		b.Created = append(b.Created, p(tokenKeyFile), p(tokenChainFile), p(tokenCACert))
	}

	// TLS certificate.
	if !opts.InsecureHTTP {
		b.TLSCertPath = p(tlsCertFile)
		if !exists(p(tlsCertFile)) || !exists(p(tlsKeyFile)) {
			if err := selfSignedTLS(opts.Rand, now, host, p(tlsKeyFile), p(tlsCertFile)); err != nil {
				return nil, err
			}
			b.Created = append(b.Created, p(tlsKeyFile), p(tlsCertFile))
		}
	}

	cfg := renderConfig(dir, opts)
	if err := writeFileAtomic(p(configFile), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	b.ConfigPath = p(configFile)
	b.AdminTokenPath = p(adminTokenFile)
	b.AdminKeyPath = p(adminKeyFile)
	return b, nil
}

// checkNotWritableByOthers refuses a data directory where a directory or
// an existing key file is writable by group or others.
func checkNotWritableByOthers(dir string, dirs, files []string) error {
	var bad []string
	check := func(path string) {
		st, err := os.Stat(path)
		if err != nil {
			return // absent: created below with owner-only modes
		}
		if st.Mode().Perm()&0o022 != 0 {
			bad = append(bad, fmt.Sprintf("%s (mode %04o)", path, st.Mode().Perm()))
		}
	}
	for _, d := range dirs {
		check(filepath.Join(dir, d))
	}
	for _, f := range files {
		check(filepath.Join(dir, f))
	}
	if len(bad) > 0 {
		return fmt.Errorf("data directory %s: writable by group or others, so keys in it could be planted or replaced: %s; "+
			"fix with chmod go-w (directories 0700, key files 0600) and start again", dir, strings.Join(bad, ", "))
	}
	return nil
}

// renderConfig writes a Trustee-format KBS config for the data directory.
func renderConfig(dir string, opts BootstrapOptions) string {
	q := func(s string) string { return strconv.Quote(s) }
	var w strings.Builder
	fmt.Fprintf(&w, "# Generated by `sigil kbs` from its flags on every start; edit a copy and\n")
	fmt.Fprintf(&w, "# pass it with --config-file to customise. Format: Trustee's KBS config.\n\n")
	fmt.Fprintf(&w, "# RCAR sessions live 5 minutes; keeping them in memory avoids a disk sync per\n")
	fmt.Fprintf(&w, "# request. A restart only makes guests re-attest. Use Redis for several replicas.\n")
	fmt.Fprintf(&w, "session_storage_type = \"Memory\"\n\n")
	fmt.Fprintf(&w, "[http_server]\nsockets = [%s]\ninsecure_http = %t\n", q(opts.Listen), opts.InsecureHTTP)
	if !opts.InsecureHTTP {
		fmt.Fprintf(&w, "private_key = %s\ncertificate = %s\n", q(filepath.Join(dir, tlsKeyFile)), q(filepath.Join(dir, tlsCertFile)))
	}
	fmt.Fprintf(&w, "\n[attestation_token]\ntrusted_certs_paths = [%s]\n", q(filepath.Join(dir, tokenCACert)))
	fmt.Fprintf(&w, "\n[attestation_service]\ntype = \"coco_as_builtin\"\ntimeout = 5\n")
	fmt.Fprintf(&w, "\n[attestation_service.attestation_token_broker]\nduration_min = 5\nverbose_token = false\n")
	fmt.Fprintf(&w, "\n[attestation_service.attestation_token_broker.signer]\nkey_path = %s\ncert_path = %s\n",
		q(filepath.Join(dir, tokenKeyFile)), q(filepath.Join(dir, tokenChainFile)))
	fmt.Fprintf(&w, "\n[attestation_service.rvps_config]\ntype = \"BuiltIn\"\n")
	fmt.Fprintf(&w, "\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n")
	fmt.Fprintf(&w, "\n[[admin.authentication.bearer_jwt.identity_providers]]\nissuer = \"sigil\"\npublic_key_uri = %s\n",
		q(filepath.Join(dir, adminPubFile)))
	fmt.Fprintf(&w, "\n[[admin.authorization.regex_acl.acls]]\nrole = \"admin\"\nallowed_endpoints = \"^/kbs/.+$\"\n")
	fmt.Fprintf(&w, "\n[storage_backend]\nstorage_type = \"LocalFs\"\n\n[storage_backend.backends.local_fs]\ndir_path = %s\n",
		q(filepath.Join(dir, storageDir)))
	fmt.Fprintf(&w, "\n[[plugins]]\nname = \"resource\"\nstorage_backend_type = \"kvstorage\"\n")
	return w.String()
}

// mintAdminToken returns an EdDSA JWT with role admin, valid ten years.
func mintAdminToken(key ed25519.PrivateKey, now time.Time) (string, error) {
	header := `{"alg":"EdDSA","typ":"JWT"}`
	claims, err := json.Marshal(map[string]any{
		"iss": "sigil", "sub": "admin", "aud": []string{"KBS"}, "role": "admin",
		"iat": now.Unix(), "exp": now.AddDate(10, 0, 0).Unix(),
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(claims)
	sig := ed25519.Sign(key, []byte(signing))
	return signing + "." + enc.EncodeToString(sig), nil
}

func selfSignedTLS(r io.Reader, now time.Time, host, keyPath, certPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(r), Subject: pkix.Name{Organization: []string{"Sigil"}, CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "localhost.localdomain"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if hn, err := os.Hostname(); err == nil && hn != "" && hn != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, hn)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(r, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := writePrivateKey(keyPath, key); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pemBlock("CERTIFICATE", der), 0o644)
}

func serial(r io.Reader) *big.Int {
	n, err := rand.Int(r, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writePrivateKey(path string, key crypto.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, pemBlock("PRIVATE KEY", der), 0o600)
}

func writePublicKey(path string, key crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, pemBlock("PUBLIC KEY", der), 0o644)
}

func readPrivateKey(path string) (crypto.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return x509.ParsePKCS8PrivateKey(blk.Bytes)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFileAtomic writes via a temporary file in the same directory, fsync
// and rename, so a crash never leaves a half-written key or config.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := io.Copy(f, bytes.NewReader(data))
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return errors.Join(fmt.Errorf("writing %s", path), werr)
	}
	return nil
}
