package config_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/config"
)

func sockets(s ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddrPort(a)
	}
	return out
}

func noEnv(string) string { return "" }

// kbs returns Default() changed by fn, the expected value of a fixture.
func kbs(fn func(k *config.KBS)) *config.KBS {
	k := config.Default()
	fn(k)
	return k
}

func grpcAS(addr string, pool, timeout int64) config.AttestationService {
	return config.AttestationService{Type: config.ASGRPC, Timeout: timeout, GRPC: &config.GRPCAS{ASAddr: addr, PoolSize: pool}}
}

func acl(role, re string) config.ACL { return config.ACL{Role: role, AllowedEndpoints: re} }

func resourcePlugin() config.Plugin {
	return config.Plugin{Name: "resource", Resource: &config.ResourcePlugin{StorageBackendType: "kvstorage"}}
}

func authenticated(ips []config.IdentityProvider, acls ...config.ACL) config.Admin {
	return config.Admin{
		AuthorizationMode: config.AuthenticatedAuthorization,
		BearerJWT:         &config.BearerJWT{IdentityProviders: ips},
		RegexACL:          &config.RegexACL{ACLs: acls},
	}
}

// normalize checks and then clears the compiled ACL regexps so that the
// rest can be compared with reflect.DeepEqual.
func normalize(t *testing.T, k *config.KBS) {
	t.Helper()
	if k.Admin.RegexACL == nil {
		return
	}
	for i := range k.Admin.RegexACL.ACLs {
		a := &k.Admin.RegexACL.ACLs[i]
		if a.Regexp == nil || a.Regexp.String() != a.AllowedEndpoints {
			t.Errorf("ACL %d: regexp not compiled from %q", i, a.AllowedEndpoints)
		}
		a.Regexp = nil
	}
}

func warningKeys(ws []config.Warning) []string {
	keys := make([]string, len(ws))
	for i, w := range ws {
		keys[i] = w.Key
	}
	slices.Sort(keys)
	return keys
}

func TestTrusteeFixtures(t *testing.T) {
	cases := []struct {
		file     string
		want     *config.KBS
		warnings []string
	}{
		{
			file: "kbs-config.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalFs, LocalFs: &config.LocalFsBackend{DirPath: "/opt/confidential-containers/storage"}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
		},
		{
			file: "kbs-config-grpc.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.AttestationService = grpcAS("http://127.0.0.1:50004", 200, 5)
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalFs, LocalFs: &config.LocalFsBackend{DirPath: "/opt/confidential-containers/storage"}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
		},
		{
			file: "docker-compose-kbs-config.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.TrustedCertsPaths = []string{"/opt/confidential-containers/kbs/user-keys/ca-cert.pem"}
				k.AttestationService = grpcAS("http://as:50004", 100, 5)
				k.Admin = authenticated([]config.IdentityProvider{{Issuer: "TrusteeInDocker", PublicKeyURI: "/opt/confidential-containers/kbs/user-keys/public.pub"}}, acl("admin", "^/kbs/.+$"))
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalFs, LocalFs: &config.LocalFsBackend{DirPath: "/opt/confidential-containers/kbs"}}
				k.Plugins = []config.Plugin{resourcePlugin(), {Name: "nebula-ca"}}
			}),
			warnings: []string{"plugins[1].name"},
		},
		{
			file: "e2e-kbs.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("127.0.0.1:8080")
				k.HTTPServer.PrivateKey = "./work/https.key"
				k.HTTPServer.Certificate = "./work/https.crt"
				k.AttestationToken.TrustedCertsPaths = []string{"./work/ca-cert.pem"}
				b := k.AttestationService.Builtin
				b.AttestationTokenBroker.Signer = &config.Signer{KeyPath: "./work/token.key", CertPath: "./work/token-cert-chain.pem"}
				b.VerifierConfig = &config.VerifierConfig{TPM: &config.TPMVerifier{TrustedAKKeysDir: "./work/tpm/trusted_ak_keys", MaxTrustedAKKeys: 100}}
				k.Admin = authenticated([]config.IdentityProvider{{Issuer: "issuer", Audience: "kbs", PublicKeyURI: "./work/kbs.pem"}}, acl("admin", "^/kbs/.+$"))
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalFs, LocalFs: &config.LocalFsBackend{DirPath: "./work/storage"}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
			warnings: []string{"attestation_service.work_dir"},
		},
		{
			file: "e2e-resource-kbs.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("127.0.0.1:50002")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.TrustedCertsPaths = []string{"./work/ca-cert.pem"}
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalFs, LocalFs: &config.LocalFsBackend{DirPath: "./work/storage"}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
		},
		{
			file: "e2e-external-plugin-tls.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("127.0.0.1:8086")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.Plugins = []config.Plugin{{Name: "external", Options: map[string]any{
					"backends": []any{map[string]any{
						"name": "echo-test", "endpoint": "https://127.0.0.1:50052",
						"ca_cert_path": "./work/echo-plugin-ca.pem", "timeout_ms": int64(5000),
					}},
				}}}
			}),
			warnings: []string{"plugins[0].name"},
		},
		{
			file: "integration-kbs.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("127.0.0.1:8081")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.Admin = authenticated([]config.IdentityProvider{{Issuer: "issuer", PublicKeyURI: "/tmp/integration/admin-public.pem"}}, acl("tester", "^/kbs/.+$"))
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalFs, LocalFs: &config.LocalFsBackend{DirPath: "/tmp/integration/storage"}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
		},
		{
			file: "integration-kbs-remote-rvps.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("127.0.0.1:8081")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.AttestationService.Builtin.RVPS = config.RVPS{Type: config.RVPSGrpcRemote, Address: "127.0.0.1:51003"}
				k.Admin = config.Admin{AuthorizationMode: config.DenyAll}
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalJSON, LocalJSON: &config.LocalJSONBackend{FileDirPath: "/tmp/integration/storage"}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
		},
		{
			file: "configs/coco-as-builtin-1.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.PrivateKey = "/etc/kbs-private.key"
				k.HTTPServer.Certificate = "/etc/kbs-cert.pem"
				k.AttestationToken.InsecureHeaderJWK = true
				k.AttestationService.Builtin.RVPS = config.RVPS{Type: config.RVPSGrpcRemote, Address: "http://127.0.0.1:50003"}
				k.Admin = config.Admin{AuthorizationMode: config.DenyAll}
			}),
			warnings: []string{"attestation_service.work_dir", "policy_engine"},
		},
		{
			file: "configs/coco-as-builtin-2.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.AttestationService.Builtin.RVPS.StorageType = config.StorageLocalFs
				k.Admin = authenticated([]config.IdentityProvider{{PublicKeyURI: "/kbs/kbs.pem"}}, acl("admin", "^/kbs/.+$"))
				k.StorageBackend.LocalFs = &config.LocalFsBackend{DirPath: "/opt/confidential-containers/attestation-service/reference_values"}
			}),
			warnings: []string{"attestation_service.attestation_token_type", "attestation_service.policy_engine", "attestation_service.work_dir"},
		},
		{
			file: "configs/coco-as-builtin-3.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.TrustedCertsPaths = []string{"/etc/kbs/as-ca.pem"}
				k.AttestationService.Builtin.AttestationTokenBroker.VerboseToken = false
				k.AttestationService.Builtin.RVPS.Extractors = map[string]any{"swid_extractor": map[string]any{}}
				k.Plugins = []config.Plugin{resourcePlugin()}
			}),
			// Parsed keys without effect are named at startup.
			warnings: []string{"attestation_service.rvps_config.extractors"},
		},
		{
			file: "configs/coco-as-grpc-1.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.PrivateKey = "/etc/kbs-private.key"
				k.HTTPServer.Certificate = "/etc/kbs-cert.pem"
				k.AttestationToken.TrustedCertsPaths = []string{"/etc/ca", "/etc/ca2"}
				k.AttestationService = grpcAS("http://127.0.0.1:50001", 100, 600)
				k.Admin = config.Admin{AuthorizationMode: config.DenyAll}
				k.StorageBackend = config.StorageBackend{StorageType: config.StorageLocalJSON, LocalJSON: &config.LocalJSONBackend{FileDirPath: "/opt/confidential-containers/trustee"}}
				k.Plugins = []config.Plugin{{Name: "sample", Sample: &config.SamplePlugin{Item: "value1"}}, resourcePlugin()}
			}),
		},
		{
			file: "configs/coco-as-grpc-2.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.AttestationService = grpcAS("http://as:50004", 100, 5)
				k.Admin = authenticated([]config.IdentityProvider{{PublicKeyURI: "/opt/confidential-containers/kbs/user-keys/public.pub"}}, acl("admin", "^/kbs/.+$"))
			}),
		},
		{
			file: "configs/coco-as-grpc-3.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.InsecureHeaderJWK = true
				k.AttestationService = grpcAS("http://127.0.0.1:50004", 100, 5)
			}),
		},
		{
			file: "configs/intel-ta-1.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.PrivateKey = "/etc/kbs-private.key"
				k.HTTPServer.Certificate = "/etc/kbs-cert.pem"
				k.AttestationToken.TrustedJWKSets = []string{"/etc/ca", "/etc/ca2"}
				k.AttestationService = config.AttestationService{Type: config.ASIntelTA, Timeout: 5, IntelTA: &config.IntelTA{
					BaseURL: "example.io", APIKey: "this-is-a-key", CertsFile: "file:///etc/ita-cert.pem", AllowUnmatchedPolicy: true,
				}}
				k.Admin = authenticated([]config.IdentityProvider{{PublicKeyURI: "/etc/kbs-admin.pub"}}, acl("admin", "^/kbs/.+$"))
				k.Plugins = []config.Plugin{{Name: "sample", Sample: &config.SamplePlugin{Item: "value1"}}, resourcePlugin()}
			}),
		},
		{
			file: "configs/intel-ta-2.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.TrustedJWKSets = []string{"https://portal.trustauthority.intel.com"}
				k.AttestationService = config.AttestationService{Type: config.ASIntelTA, Timeout: 5, IntelTA: &config.IntelTA{
					BaseURL: "https://api.trustauthority.intel.com", APIKey: "tBfd5kKX2x9ahbodKV1...", CertsFile: "https://portal.trustauthority.intel.com",
				}}
				k.Admin = authenticated([]config.IdentityProvider{{PublicKeyURI: "/kbs/kbs.pem"}}, acl("admin", "^/kbs/.+$"))
			}),
		},
		{
			file: "configs/intel-ta-3.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.InsecureHTTP = true
				k.AttestationToken.TrustedJWKSets = []string{"https://portal.trustauthority.intel.com"}
				k.AttestationService = config.AttestationService{Type: config.ASIntelTA, Timeout: 5, IntelTA: &config.IntelTA{
					BaseURL: "https://api.trustauthority.intel.com", APIKey: "tBfd5kKX2x9ahbodKV1...", CertsFile: "https://portal.trustauthority.intel.com",
					PolicyIDs: []string{"7e1a5c8c-4f4b-4a0e-9b33-0c1f1c3d9a10", "b6f2e6a4-2d54-4a63-8f49-3c3a1f5d7e21"},
				}}
				k.Admin = config.Admin{AuthorizationMode: config.DenyAll}
			}),
		},
		{
			file: "configs/auth-rate-limit.toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.InsecureHTTP = true
				k.HTTPServer.AuthRateLimitPerSecond = 5
				k.HTTPServer.AuthRateLimitBurst = 20
				k.AttestationService = grpcAS("http://127.0.0.1:50001", 100, 5)
				k.Admin = config.Admin{AuthorizationMode: config.DenyAll}
			}),
			warnings: []string{"attestation_token"},
		},
	}
	for _, p := range []struct {
		name     string
		profile  config.TLSProfile
		min, max config.TLSVersion
		ciphers  string
		groups   string
	}{
		{"old", config.TLSProfileOld, "", "", "", ""},
		{"intermediate", config.TLSProfileIntermediate, "", "", "", ""},
		{"modern", config.TLSProfileModern, "", "", "", ""},
		{"custom", config.TLSProfileCustom, "1.3", "", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", "X25519:secp384r1"},
		{"custom-pqc", config.TLSProfileCustom, "1.3", "1.3", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256", "X25519MLKEM768:X25519:secp256r1"},
	} {
		cases = append(cases, struct {
			file     string
			want     *config.KBS
			warnings []string
		}{
			file: "configs/tls-profile-" + p.name + ".toml",
			want: kbs(func(k *config.KBS) {
				k.HTTPServer.Sockets = sockets("0.0.0.0:8080")
				k.HTTPServer.PrivateKey = "/etc/kbs-private.key"
				k.HTTPServer.Certificate = "/etc/kbs-cert.pem"
				k.HTTPServer.TLSProfile = p.profile
				k.HTTPServer.TLSMinVersion = p.min
				k.HTTPServer.TLSMaxVersion = p.max
				k.HTTPServer.TLSCiphers = p.ciphers
				k.HTTPServer.TLSGroups = p.groups
				k.AttestationService = grpcAS("http://127.0.0.1:50001", 100, 5)
				k.Admin = config.Admin{AuthorizationMode: config.DenyAll}
			}),
			warnings: []string{"attestation_token"},
		})
	}

	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, warnings, err := config.Load(filepath.Join("testdata", "trustee", c.file), noEnv)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			normalize(t, got)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Load mismatch\n got: %s\nwant: %s", dump(got), dump(c.want))
			}
			if gk := warningKeys(warnings); !slices.Equal(gk, c.warnings) {
				t.Errorf("warnings = %v; want keys %q", warnings, c.warnings)
			}
		})
	}
}

func dump(k *config.KBS) string {
	var b strings.Builder
	v := reflect.ValueOf(k).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		fmt.Fprintf(&b, "\n  %s: %s", v.Type().Field(i).Name, deref(f))
	}
	return b.String()
}

func deref(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		return "&" + deref(v.Elem())
	case reflect.Struct:
		var parts []string
		for i := range v.NumField() {
			parts = append(parts, v.Type().Field(i).Name+":"+deref(v.Field(i)))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case reflect.Slice:
		var parts []string
		for i := range v.Len() {
			parts = append(parts, deref(v.Index(i)))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%v", v.Interface())
}

// TestFormats checks that the same configuration in TOML, JSON and YAML
// gives the same result.
func TestFormats(t *testing.T) {
	want, _, err := config.Load("testdata/formats/kbs.toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	normalize(t, want)
	if want.AttestationService.Builtin.AttestationTokenBroker.DurationMin != 7 || len(want.Admin.RegexACL.ACLs) != 1 {
		t.Fatalf("TOML fixture not loaded as expected: %s", dump(want))
	}
	for _, f := range []string{"testdata/formats/kbs.json", "testdata/formats/kbs.yaml"} {
		got, warnings, err := config.Load(f, noEnv)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		normalize(t, got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs from TOML\n got: %s\nwant: %s", f, dump(got), dump(want))
		}
		if gk := warningKeys(warnings); !slices.Equal(gk, []string{"attestation_service.extra_key", "attestation_service.rvps_config.extractors", "http_server.worker_count"}) {
			t.Errorf("%s warnings = %v", f, warnings)
		}
	}
	if _, _, err := config.Load("testdata/formats/kbs.ini", noEnv); err == nil {
		t.Error("unknown extension accepted")
	}
	if _, _, err := config.Parse([]byte("{}"), "xml", noEnv); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestDefaults checks the value each missing key gets.
func TestDefaults(t *testing.T) {
	got, warnings, err := config.Parse([]byte(`
[http_server]
insecure_http = true
[admin]
authorization_mode = "InsecureAllowAll"
[attestation_token]
insecure_header_jwk = true
`), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	want := config.Default()
	want.HTTPServer.InsecureHTTP = true
	want.AttestationToken.InsecureHeaderJWK = true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("minimal config\n got: %s\nwant: %s", dump(got), dump(want))
	}
	d := config.Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"sockets", d.HTTPServer.Sockets, sockets("127.0.0.1:8080")},
		{"insecure_http", d.HTTPServer.InsecureHTTP, false},
		{"payload_request_size", d.HTTPServer.PayloadRequestSize, uint32(2)},
		{"payload limit bytes", d.HTTPServer.PayloadLimit(), int64(2 << 20)},
		{"worker_count", d.HTTPServer.WorkerCount, 0},
		{"tls_profile", d.HTTPServer.TLSProfile, config.TLSProfileIntermediate},
		{"admin", d.Admin.AuthorizationMode, config.InsecureAllowAll},
		{"as type", d.AttestationService.Type, config.ASBuiltin},
		{"timeout", d.AttestationService.Timeout, int64(5)},
		{"rvps", d.AttestationService.Builtin.RVPS, config.RVPS{Type: config.RVPSBuiltIn}},
		{"broker", d.AttestationService.Builtin.AttestationTokenBroker, config.TokenBroker{
			DurationMin: 5, IssuerName: "CoCo-Attestation-Service", DeveloperName: "https://confidentialcontainers.org",
			ProfileName: "tag:github.com,2024:confidential-containers/Trustee", VerboseToken: false,
		}},
		{"verifier_config", d.AttestationService.Builtin.VerifierConfig, (*config.VerifierConfig)(nil)},
		{"storage", d.StorageBackend, config.StorageBackend{StorageType: config.StorageMemory}},
		{"session storage", d.SessionStorage(), config.StorageMemory},
		{"plugins", d.Plugins, []config.Plugin(nil)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v; want %#v", c.name, c.got, c.want)
		}
	}
}

func TestMissingCertificate(t *testing.T) {
	_, _, err := config.Parse([]byte(`
[http_server]
[admin]
authorization_mode = "DenyAll"
`), "toml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "Missing certificate") ||
		!strings.Contains(err.Error(), "http_server.private_key") || !strings.Contains(err.Error(), "http_server.certificate") {
		t.Fatalf("err = %v; want Missing certificate naming both keys", err)
	}
}

func TestSubTableDefaults(t *testing.T) {
	k, _, err := config.Parse([]byte(`
session_storage_type = "Redis"
[http_server]
insecure_http = true
[admin]
authorization_mode = "DenyAll"
[attestation_token]
insecure_header_jwk = true
[attestation_service]
type = "coco_as_builtin"
storage_type = "postgres"
[attestation_service.rvps_config]
type = "GrpcRemote"
[attestation_service.attestation_token_broker.signer]
key_path = "token.key"
[attestation_service.verifier_config.nvidia_verifier]
type = "Remote"
[attestation_service.verifier_config.tpm_verifier]
[attestation_service.verifier_config.snp_verifier]
[attestation_service.verifier_config.dcap_verifier]
collateral_service = "https://pccs.example/sgx/certification/v4/"
[attestation_service.verifier_config.nvidia_dpu_verifier]
[storage_backend]
storage_type = "local_fs"
[storage_backend.backends.local_fs]
[storage_backend.backends.local_json]
[storage_backend.backends.postgres]
password = "p@ss/word"
[storage_backend.backends.redis]
[[plugins]]
name = "ResourceStorage"
`), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b := k.AttestationService.Builtin
	vc := b.VerifierConfig
	checks := []struct {
		name      string
		got, want any
	}{
		{"as storage_type", b.StorageType, config.StoragePostgres},
		{"session", k.SessionStorage(), config.StorageRedis},
		{"rvps", b.RVPS, config.RVPS{Type: config.RVPSGrpcRemote, Address: "127.0.0.1:50003"}},
		{"rvps url", b.RVPS.RemoteURL(), "http://127.0.0.1:50003"},
		{"signer", *b.AttestationTokenBroker.Signer, config.Signer{KeyPath: "token.key"}},
		{"nvidia", *vc.NVIDIA, config.NVIDIAVerifier{Type: "Remote", VerifierURL: "https://nras.attestation.nvidia.com/v4/attest"}},
		{"tpm", *vc.TPM, config.TPMVerifier{TrustedAKKeysDir: "/etc/tpm/trusted_ak_keys", MaxTrustedAKKeys: 100}},
		{"snp", vc.SNP.VCEKSources, []config.VCEKSource{{Type: "KDS", BaseURL: "https://kdsintf.amd.com"}}},
		{"dcap", *vc.DCAP, config.DCAPVerifier{CollateralService: "https://pccs.example/sgx/certification/v4/", TCBUpdateType: "early"}},
		{"dpu", vc.NVIDIADPU, map[string]any{}},
		{"local_fs", *k.StorageBackend.LocalFs, config.LocalFsBackend{DirPath: "/opt/confidential-containers/storage/local_fs"}},
		{"local_json", *k.StorageBackend.LocalJSON, config.LocalJSONBackend{FileDirPath: "/opt/confidential-containers/storage/local_json"}},
		{"postgres", *k.StorageBackend.Postgres, config.PostgresBackend{DB: "postgres", Username: "postgres", Password: "p@ss/word", Port: 5432, Host: "localhost"}},
		{"postgres conn", k.StorageBackend.Postgres.ConnString(), "postgres://postgres:p%40ss%2Fword@localhost:5432/postgres"},
		{"redis", *k.StorageBackend.Redis, config.RedisBackend{URL: "redis://127.0.0.1:6379"}},
		{"plugin alias", k.Plugins[0].Name, "resource"},
		{"plugin supported", k.Plugins[0].Supported(), true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v; want %#v", c.name, c.got, c.want)
		}
	}
}

func TestVerifierVariants(t *testing.T) {
	k, _, err := config.Parse([]byte(`{
  "http_server": {"insecure_http": true},
  "admin": {"authorization_mode": "DenyAll"},
  "attestation_token": {"insecure_header_jwk": true},
  "attestation_service": {
    "type": "CoCoASBuiltIn",
    "verifier_config": {
      "nvidia_verifier": {"type": "Local"},
      "tpm_verifier": {"trusted_ak_keys_dir": "/keys", "max_trusted_ak_keys": 3},
      "snp_verifier": {"vcek_sources": [{"type": "OfflineStore"}, {"type": "KDS", "base_url": "https://kds.example"}]},
      "dcap_verifier": {"collateral_service": "file:///collateral", "tcb_update_type": "standard"}
    }
  }
}`), "json", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	vc := k.AttestationService.Builtin.VerifierConfig
	if *vc.NVIDIA != (config.NVIDIAVerifier{Type: "Local"}) {
		t.Errorf("nvidia = %+v", *vc.NVIDIA)
	}
	if *vc.TPM != (config.TPMVerifier{TrustedAKKeysDir: "/keys", MaxTrustedAKKeys: 3}) {
		t.Errorf("tpm = %+v", *vc.TPM)
	}
	want := []config.VCEKSource{{Type: "OfflineStore", Path: "/opt/confidential-containers/attestation-service/kds-store"}, {Type: "KDS", BaseURL: "https://kds.example"}}
	if !reflect.DeepEqual(vc.SNP.VCEKSources, want) {
		t.Errorf("snp = %+v", vc.SNP.VCEKSources)
	}
	if vc.DCAP.TCBUpdateType != "standard" || vc.DCAP.CollateralService != "file:///collateral" {
		t.Errorf("dcap = %+v", *vc.DCAP)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"POSTGRES_URL": "postgres://u:p@db:5432/trustee",
		"REDIS_URL":    "redis://valkey:6379/0",
	}
	getenv := func(k string) string { return env[k] }
	src := `
session_storage_type = "Redis"
[http_server]
insecure_http = true
[admin]
authorization_mode = "DenyAll"
[attestation_token]
insecure_header_jwk = true
[storage_backend]
storage_type = "Postgres"
[storage_backend.backends.postgres]
host = "ignored-when-url-set"
[storage_backend.backends.redis]
url = "redis://from-file:6379"
`
	k, _, err := config.Parse([]byte(src), "toml", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.StorageBackend.Postgres.ConnString(); got != env["POSTGRES_URL"] {
		t.Errorf("postgres = %q; want POSTGRES_URL", got)
	}
	if got := k.StorageBackend.Redis.URL; got != env["REDIS_URL"] {
		t.Errorf("redis = %q; want REDIS_URL", got)
	}
	// Without the environment, the file's values apply.
	k, _, err = config.Parse([]byte(src), "toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.StorageBackend.Postgres.ConnString(); got != "postgres://postgres@ignored-when-url-set:5432/postgres" {
		t.Errorf("postgres = %q", got)
	}
	if got := k.StorageBackend.Redis.URL; got != "redis://from-file:6379" {
		t.Errorf("redis = %q", got)
	}
	// The environment stands in for a missing backend table.
	k, _, err = config.Parse([]byte(`
session_storage_type = "redis"
[http_server]
insecure_http = true
[admin]
authorization_mode = "DenyAll"
[attestation_token]
insecure_header_jwk = true
`), "toml", getenv)
	if err != nil {
		t.Fatalf("REDIS_URL should satisfy the redis backend: %v", err)
	}
	if k.StorageBackend.Redis.URL != env["REDIS_URL"] {
		t.Errorf("redis = %+v", k.StorageBackend.Redis)
	}
}

func TestTLSVersions(t *testing.T) {
	for _, c := range []struct {
		profile  config.TLSProfile
		min, max config.TLSVersion
		lo, hi   config.TLSVersion
	}{
		{config.TLSProfileIntermediate, "", "", "1.2", "1.3"},
		{config.TLSProfileOld, "", "", "1.2", "1.3"},
		{config.TLSProfileModern, "", "", "1.3", "1.3"},
		{config.TLSProfileCustom, "1.3", "", "1.3", "1.3"},
		{config.TLSProfileCustom, "", "1.2", "1.2", "1.2"},
	} {
		h := config.HTTPServer{TLSProfile: c.profile, TLSMinVersion: c.min, TLSMaxVersion: c.max}
		if lo, hi := h.TLSVersions(); lo != c.lo || hi != c.hi {
			t.Errorf("%+v: TLSVersions = %s,%s; want %s,%s", c, lo, hi, c.lo, c.hi)
		}
	}
}

// errorKeys returns the Key of every *config.Error in err.
func errorKeys(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(e error) {
		var ce *config.Error
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range m.Unwrap() {
				walk(x)
			}
			return
		}
		if errors.As(e, &ce) {
			keys = append(keys, ce.Key)
		}
	}
	walk(err)
	return keys
}

const validBase = `
[http_server]
insecure_http = true
[admin]
authorization_mode = "DenyAll"
[attestation_token]
insecure_header_jwk = true
`

func TestInvalidConfigs(t *testing.T) {
	cases := []struct {
		name   string
		src    string
		key    string
		reason string
	}{
		{"missing http_server", "[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server", "required"},
		{"missing admin", "[http_server]\ninsecure_http = true\n", "admin", "required"},
		{"admin without mode", "[http_server]\ninsecure_http = true\n[admin]\n", "admin.authorization_mode", "missing"},
		{"legacy admin type", "[http_server]\ninsecure_http = true\n[admin]\ntype = \"InsecureAllowAll\"\n", "admin.type", "legacy"},
		{"legacy admin insecure_api", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"DenyAll\"\ninsecure_api = true\n", "admin.insecure_api", "unknown key"},
		{"unknown mode", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AllowSome\"\n", "admin.authorization_mode", "unknown authorization mode"},
		{"adjacent tag", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication]\ntype = \"BearerJwt\"\n[admin.authorization.regex_acl]\nacls = []\n", "admin.authentication.type", "adjacent-tag"},
		{"empty identity providers", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\nidentity_providers = []\n[admin.authorization.regex_acl]\nacls = []\n", "admin.authentication.bearer_jwt.identity_providers", "at least one"},
		{"missing bearer_jwt", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authorization.regex_acl]\nacls = []\n", "admin.authentication.bearer_jwt", "missing table"},
		{"missing regex_acl", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\nidentity_providers = [{public_key_uri = \"k.pem\"}]\n", "admin.authorization.regex_acl", "missing table"},
		{"provider without key", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\nidentity_providers = [{issuer = \"x\"}]\n[admin.authorization.regex_acl]\nacls = []\n", "admin.authentication.bearer_jwt.identity_providers[0]", "public_key_uri or jwk_set_uri"},
		{"unanchored acl start", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\nidentity_providers = [{public_key_uri = \"k.pem\"}]\n[admin.authorization.regex_acl]\nacls = [{role = \"a\", allowed_endpoints = \"/kbs/.+$\"}]\n", "admin.authorization.regex_acl.acls[0].allowed_endpoints", "Admin Role regex must be anchored."},
		{"unanchored acl end", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\nidentity_providers = [{public_key_uri = \"k.pem\"}]\n[admin.authorization.regex_acl]\nacls = [{role = \"a\", allowed_endpoints = \"^/kbs/.+\"}]\n", "admin.authorization.regex_acl.acls[0].allowed_endpoints", "Admin Role regex must be anchored."},
		{"invalid acl regex", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"AuthenticatedAuthorization\"\n[admin.authentication.bearer_jwt]\nidentity_providers = [{public_key_uri = \"k.pem\"}]\n[admin.authorization.regex_acl]\nacls = [{role = \"a\", allowed_endpoints = \"^/kbs/(+$\"}]\n", "admin.authorization.regex_acl.acls[0].allowed_endpoints", "invalid regex"},
		{"auth tables with DenyAll", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"DenyAll\"\n[admin.authentication.bearer_jwt]\nidentity_providers = [{public_key_uri = \"k.pem\"}]\n", "admin.authentication", "only valid"},
		{"wrong type bool", "[http_server]\ninsecure_http = 3\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.insecure_http", "expected a boolean"},
		{"wrong type table", "http_server = 5\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server", "expected a table"},
		{"wrong type list", validBase + "[attestation_service]\ntype = \"intel_ta\"\nbase_url = \"u\"\napi_key = \"k\"\ncerts_file = \"c\"\npolicy_ids = \"one\"\n", "attestation_service.policy_ids", "expected an array"},
		{"payload zero", "[http_server]\ninsecure_http = true\npayload_request_size = 0\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.payload_request_size", "at least 1"},
		{"payload negative", "[http_server]\ninsecure_http = true\npayload_request_size = -1\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.payload_request_size", "out of range"},
		{"worker zero", "[http_server]\ninsecure_http = true\nworker_count = 0\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.worker_count", "at least 1"},
		{"bad socket", "[http_server]\ninsecure_http = true\nsockets = [\"127.0.0.1:8080\", \"localhost:8080\"]\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.sockets[1]", "invalid socket address"},
		{"socket without port", "[http_server]\ninsecure_http = true\nsockets = [\"0.0.0.0\"]\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.sockets[0]", "invalid socket address"},
		{"no sockets", "[http_server]\ninsecure_http = true\nsockets = []\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.sockets", "at least one"},
		{"missing certificate", "[http_server]\nprivate_key = \"k.pem\"\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.certificate", "Missing certificate"},
		{"missing private key", "[http_server]\ninsecure_http = false\ncertificate = \"c.pem\"\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.private_key", "Missing certificate"},
		{"tls min > max", "[http_server]\ninsecure_http = true\ntls_profile = \"custom\"\ntls_min_version = \"1.3\"\ntls_max_version = \"1.2\"\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.tls_min_version", "greater than maximum"},
		{"modern with max 1.2", "[http_server]\ninsecure_http = true\ntls_profile = \"modern\"\ntls_max_version = \"1.2\"\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.tls_max_version", "greater than maximum"},
		{"bad tls version", "[http_server]\ninsecure_http = true\ntls_min_version = \"1.1\"\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.tls_min_version", "unsupported TLS version"},
		{"bad tls profile", "[http_server]\ninsecure_http = true\ntls_profile = \"paranoid\"\n[admin]\nauthorization_mode = \"DenyAll\"\n", "http_server.tls_profile", "unknown TLS profile"},
		{"token without anchor", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"DenyAll\"\n[attestation_token]\n", "attestation_token", "no trust anchor"},
		{"token insecure false", "[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"DenyAll\"\n[attestation_token]\ninsecure_header_jwk = false\ntrusted_certs_paths = []\n", "attestation_token", "no trust anchor"},
		{"unknown storage type", validBase + "[storage_backend]\nstorage_type = \"Etcd\"\n", "storage_backend.storage_type", "unknown storage type"},
		{"missing local_fs table", validBase + "[storage_backend]\nstorage_type = \"LocalFs\"\n", "storage_backend.backends.local_fs", "missing table"},
		{"missing local_json table", validBase + "[storage_backend]\nstorage_type = \"local_json\"\n", "storage_backend.backends.local_json", "missing table"},
		{"missing postgres table", validBase + "[storage_backend]\nstorage_type = \"Postgres\"\n", "storage_backend.backends.postgres", "missing table"},
		{"missing redis table for sessions", "session_storage_type = \"Redis\"\n" + validBase, "storage_backend.backends.redis", "missing table"},
		{"missing table for rvps override", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.rvps_config]\ntype = \"BuiltIn\"\nstorage_type = \"LocalJson\"\n", "storage_backend.backends.local_json", "missing table"},
		{"unknown session storage", "session_storage_type = \"Disk\"\n" + validBase, "session_storage_type", "unknown storage type"},
		{"bad postgres port", validBase + "[storage_backend.backends.postgres]\nport = 70000\n", "storage_backend.backends.postgres.port", "out of range"},
		{"unknown AS type", validBase + "[attestation_service]\ntype = \"veraison\"\n", "attestation_service.type", "unknown attestation service type"},
		{"AS without type", validBase + "[attestation_service]\ntimeout = 5\n", "attestation_service.type", "missing"},
		{"timeout zero", validBase + "[attestation_service]\ntype = \"coco_as_grpc\"\ntimeout = 0\n", "attestation_service.timeout", "positive"},
		{"pool size zero", validBase + "[attestation_service]\ntype = \"coco_as_grpc\"\npool_size = 0\n", "attestation_service.pool_size", "positive"},
		{"intel_ta missing key", validBase + "[attestation_service]\ntype = \"intel_ta\"\nbase_url = \"u\"\ncerts_file = \"c\"\n", "attestation_service.api_key", "missing"},
		{"unknown rvps type", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.rvps_config]\ntype = \"Remote\"\n", "attestation_service.rvps_config.type", "unknown RVPS type"},
		{"signer without key", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.attestation_token_broker.signer]\ncert_path = \"c.pem\"\n", "attestation_service.attestation_token_broker.signer.key_path", "missing"},
		{"duration zero", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.attestation_token_broker]\nduration_min = 0\n", "attestation_service.attestation_token_broker.duration_min", "positive"},
		{"unknown nvidia type", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.verifier_config.nvidia_verifier]\ntype = \"Cloud\"\n", "attestation_service.verifier_config.nvidia_verifier.type", "unknown NVIDIA"},
		{"unknown vcek source", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.verifier_config.snp_verifier]\nvcek_sources = [{type = \"Cache\"}]\n", "attestation_service.verifier_config.snp_verifier.vcek_sources[0].type", "unknown VCEK"},
		{"unknown tcb update", validBase + "[attestation_service]\ntype = \"coco_as_builtin\"\n[attestation_service.verifier_config.dcap_verifier]\ntcb_update_type = \"late\"\n", "attestation_service.verifier_config.dcap_verifier.tcb_update_type", "unknown TCB"},
		{"unknown plugin", validBase + "[[plugins]]\nname = \"teleporter\"\n", "plugins[0].name", "unknown plugin"},
		{"plugin without name", validBase + "[[plugins]]\nitem = \"x\"\n", "plugins[0].name", "missing"},
		{"sample without item", validBase + "[[plugins]]\nname = \"sample\"\n", "plugins[0].item", "missing"},
		{"unknown resource backend", validBase + "[[plugins]]\nname = \"resource\"\nstorage_backend_type = \"Floppy\"\n", "plugins[0].storage_backend_type", "unknown resource backend"},
		{"duplicate plugin", validBase + "[[plugins]]\nname = \"resource\"\n[[plugins]]\nname = \"ResourceStorage\"\n", "plugins[1].name", "configured twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, _, err := config.Parse([]byte(c.src), "toml", noEnv)
			if err == nil {
				t.Fatalf("accepted: %s", dump(k))
			}
			if !slices.Contains(errorKeys(err), c.key) {
				t.Errorf("error keys = %q; want %q\nerr: %v", errorKeys(err), c.key, err)
			}
			if !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("err = %v; want it to name %q and say %q", err, c.key, c.reason)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, _, err := config.Parse([]byte(`
[http_server]
payload_request_size = 0
tls_profile = "x"
[admin]
authorization_mode = "Nope"
`), "toml", noEnv)
	keys := errorKeys(err)
	for _, want := range []string{"http_server.payload_request_size", "http_server.tls_profile", "http_server.private_key", "admin.authorization_mode"} {
		if !slices.Contains(keys, want) {
			t.Errorf("error keys %q lack %q", keys, want)
		}
	}
}

func TestUnknownKeyWarnings(t *testing.T) {
	src := "top_level_typo = 1\n" + validBase + `
[http_server.nested]
x = 1
[attestation_service]
type = "coco_as_builtin"
work_dir = "/var/lib/as"
policy_engine = "opa"
attestation_token_type = "CoCo"
as_addr = "http://wrong-section:50004"
[attestation_service.attestation_token_broker]
durationmin = 5
[attestation_service.attestation_token_broker.signer]
key_path = "k"
cert_chain = "c"
[attestation_service.rvps_config]
type = "BuiltIn"
store_type = "LocalFs"
[attestation_service.verifier_config]
sev_verifier = {}
[attestation_service.verifier_config.tpm_verifier]
trusted_ak_keys = "/x"
[storage_backend]
storage_type = "Memory"
[storage_backend.backends.local_fs]
dir = "/x"
[storage_backend.backends.etcd]
url = "x"
[policy_engine]
policy_path = "/p.rego"
[[plugins]]
name = "resource"
type = "LocalFs"
dir_path = "/repo"
[[plugins]]
name = "sample"
item = "i"
extra = true
[sigil]
data_dir = "/var/lib/sigil"
bearer_header_limit_kib = 256
`
	k, warnings, err := config.Parse([]byte(strings.Replace(src, "insecure_http = true", "insecure_http = true\nunknown_http = 1", 1)), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"attestation_service.as_addr",
		"attestation_service.attestation_token_broker.durationmin",
		"attestation_service.attestation_token_broker.signer.cert_chain",
		"attestation_service.attestation_token_type",
		"attestation_service.policy_engine",
		"attestation_service.rvps_config.store_type",
		"attestation_service.verifier_config.sev_verifier",
		"attestation_service.verifier_config.tpm_verifier.trusted_ak_keys",
		"attestation_service.work_dir",
		"http_server.nested",
		"http_server.unknown_http",
		"plugins[0].dir_path",
		"plugins[0].type",
		"plugins[1].extra",
		"policy_engine",
		"sigil.bearer_header_limit_kib",
		"sigil.data_dir",
		"storage_backend.backends.etcd",
		"storage_backend.backends.local_fs.dir",
		"top_level_typo",
	}
	if got := warningKeys(warnings); !slices.Equal(got, want) {
		t.Errorf("warning keys:\n got %q\nwant %q", got, want)
	}
	for _, w := range warnings {
		if w.Message == "" {
			t.Errorf("warning %q has no message", w.Key)
		}
		if w.Key == "attestation_service.work_dir" && !strings.Contains(w.Message, "obsolete") {
			t.Errorf("work_dir warning = %q; want it marked obsolete", w.Message)
		}
	}
	if k.AttestationService.Builtin.AttestationTokenBroker.DurationMin != 5 {
		t.Error("misspelled key must not set the value")
	}
}

func TestUnsupportedPlugins(t *testing.T) {
	k, warnings, err := config.Parse([]byte(validBase+`
[[plugins]]
name = "resource"
storage_backend_type = "Vault"
vault_url = "https://vault:8200"
token = "s.secret"
[[plugins]]
name = "Pkcs11"
module = "/usr/lib/softhsm.so"
pin = "1234"
[[plugins]]
name = "provisioner"
key_length = 32
`), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Plugins) != 3 {
		t.Fatalf("plugins = %+v", k.Plugins)
	}
	r := k.Plugins[0]
	if r.Supported() || r.Resource.StorageBackendType != "Vault" || r.Resource.Options["vault_url"] != "https://vault:8200" {
		t.Errorf("vault resource plugin = %+v %+v", r, r.Resource)
	}
	if p := k.Plugins[1]; p.Name != "pkcs11" || p.Supported() || p.Options["module"] != "/usr/lib/softhsm.so" {
		t.Errorf("pkcs11 = %+v", p)
	}
	if p := k.Plugins[2]; p.Name != "provisioner" || p.Options["key_length"] != int64(32) {
		t.Errorf("provisioner = %+v", p)
	}
	want := []string{"plugins[0].storage_backend_type", "plugins[1].name", "plugins[2].name"}
	if got := warningKeys(warnings); !slices.Equal(got, want) {
		t.Errorf("warnings = %v; want keys %q", warnings, want)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "not supported by Sigil") {
			t.Errorf("warning %v does not say unsupported", w)
		}
		if strings.Contains(w.Message, "s.secret") || strings.Contains(w.Message, "1234") {
			t.Errorf("warning leaks a secret: %v", w)
		}
	}
}

func TestScalarCoercion(t *testing.T) {
	k, _, err := config.Parse([]byte(`
[http_server]
insecure_http = "true"
payload_request_size = "8"
[admin]
authorization_mode = "DenyAll"
[attestation_token]
insecure_header_jwk = true
[attestation_service]
type = "coco_as_grpc"
timeout = "10"
`), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !k.HTTPServer.InsecureHTTP || k.HTTPServer.PayloadRequestSize != 8 || k.AttestationService.Timeout != 10 {
		t.Errorf("coercion failed: %+v %+v", k.HTTPServer, k.AttestationService)
	}
	if k.AttestationService.SessionTimeout().Minutes() != 10 {
		t.Errorf("SessionTimeout = %v", k.AttestationService.SessionTimeout())
	}
}

func TestAttestationTokenMissingWarns(t *testing.T) {
	_, warnings, err := config.Parse([]byte("[http_server]\ninsecure_http = true\n[admin]\nauthorization_mode = \"DenyAll\"\n"), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := warningKeys(warnings); !slices.Equal(got, []string{"attestation_token"}) {
		t.Errorf("warnings = %v", warnings)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{validBase, "[admin]\ntype=1", "", "[[plugins]]\nname=\"sample\"", "x = [1, {a = 2}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, _, err := config.Parse(data, "toml", noEnv)
		if err == nil && k == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && k != nil {
			t.Fatal("config returned with an error")
		}
		_, _, _ = config.Parse(data, "json", noEnv)
		_, _, _ = config.Parse(data, "yaml", noEnv)
	})
}

// TestSigilAcrossFormats checks that [sigil] settings read the same from
// every file format, with defaults for what is absent.
func TestSigilAcrossFormats(t *testing.T) {
	docs := map[string]string{
		"toml": validBase + "[sigil]\nheader_limit_kib = 64\nmax_connections = 100\nsnp_check_crl = false\ncollateral_dir = \"/c\"\npolicy_timeout_ms = 500\n",
		"json": `{"http_server":{"insecure_http":true},"admin":{"authorization_mode":"DenyAll"},"attestation_token":{"insecure_header_jwk":true},
"sigil":{"header_limit_kib":64,"max_connections":100,"snp_check_crl":false,"collateral_dir":"/c","policy_timeout_ms":500}}`,
		"yaml": "http_server: {insecure_http: true}\nadmin: {authorization_mode: DenyAll}\nattestation_token: {insecure_header_jwk: true}\n" +
			"sigil:\n  header_limit_kib: 64\n  max_connections: 100\n  snp_check_crl: false\n  collateral_dir: /c\n  policy_timeout_ms: 500\n",
	}
	want := config.Sigil{HeaderLimitKiB: 64, MaxConnections: 100, CollateralDir: "/c", PolicyTimeoutMs: 500}
	for format, doc := range docs {
		k, warnings, err := config.Parse([]byte(doc), format, noEnv)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if k.Sigil != want {
			t.Errorf("%s: sigil = %+v; want %+v", format, k.Sigil, want)
		}
		for _, w := range warnings {
			if strings.HasPrefix(w.Key, "sigil.") {
				t.Errorf("%s: unexpected warning %v", format, w)
			}
		}
	}
	k, _, err := config.Parse([]byte(validBase), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if k.Sigil != config.DefaultSigil() || !k.Sigil.SNPCheckCRL {
		t.Errorf("defaults = %+v", k.Sigil)
	}
	for _, bad := range []string{"header_limit_kib = 1", "max_connections = \"many\"", "snp_check_crl = 3", "policy_timeout_ms = 0"} {
		if _, _, err := config.Parse([]byte(validBase+"[sigil]\n"+bad+"\n"), "toml", noEnv); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestLogWarnings(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	config.LogWarnings(logger, []config.Warning{{Key: "attestation_service.work_dir", Message: "obsolete"}})
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "key=attestation_service.work_dir") {
		t.Errorf("log output = %q", out)
	}
}

// TestKeysWithoutEffectWarned: keys Sigil parses but cannot apply are named
// in a warning instead of being stored silently.
func TestKeysWithoutEffectWarned(t *testing.T) {
	src := validBase + `
[attestation_service]
type = "coco_as_builtin"
[attestation_service.verifier_config.nvidia_dpu_verifier]
x = 1
[attestation_service.rvps_config]
type = "BuiltIn"
[attestation_service.rvps_config.extractors]
swid_extractor = {}
`
	src = strings.Replace(src, "insecure_http = true", "insecure_http = true\nworker_count = 4", 1)
	_, warnings, err := config.Parse([]byte(src), "toml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := warningKeys(warnings)
	for _, want := range []string{"http_server.worker_count", "attestation_service.verifier_config.nvidia_dpu_verifier", "attestation_service.rvps_config.extractors"} {
		if !slices.Contains(got, want) {
			t.Errorf("no warning for %s (got %q)", want, got)
		}
	}
}
