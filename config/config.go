// Package config loads Trustee's KBS configuration file (TOML, JSON or YAML,
// chosen by file extension) into typed structs with Trustee's defaults.
//
// Compatibility notes:
//   - Every key of Trustee's KBS config and of the builtin Attestation Service
//     is understood. Unknown keys, at any depth, are not fatal: they produce a
//     Warning naming the full dotted key (Trustee silently ignores most of
//     them). Keys that Trustee no longer reads (work_dir, policy_engine,
//     attestation_token_type, …) get an "obsolete" warning.
//   - Exception: inside [admin], unknown keys are errors, as in Trustee (its
//     admin config is an internally tagged enum that rejects unknown fields).
//     The legacy `type = "…"` key and the adjacent-tag form
//     `[admin.authentication] type = …` are rejected with an explicit
//     message.
//   - Checks that Trustee performs at startup (missing TLS certificate,
//     attestation-token trust anchors, admin regexes, storage sub-tables, …)
//     are done here, so an invalid file fails at load time with an Error that
//     names the key. All problems are reported at once (errors.Join).
//   - Relative paths are kept as written; like Trustee, they are resolved
//     against the process working directory, not the config file's
//     directory.
//   - Scalars are converted as Trustee's config loader does: "5" is accepted
//     for an integer and "true"/"false" for a boolean.
//   - Environment overrides (POSTGRES_URL, REDIS_URL) are read through the
//     getenv function passed to Load/Parse, never from the process directly.
//   - Sigil-specific settings live under [sigil] (type Sigil); unknown keys
//     there are warned about like anywhere else.
package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults (Trustee's values).
const (
	DefaultSocket             = "127.0.0.1:8080"
	DefaultPayloadRequestSize = 2 // MiB
	DefaultSessionTimeout     = 5 // minutes
	DefaultTokenDuration      = 5 // minutes
	DefaultIssuerName         = "CoCo-Attestation-Service"
	DefaultDeveloperName      = "https://confidentialcontainers.org"
	DefaultProfileName        = "tag:github.com,2024:confidential-containers/Trustee"
	DefaultRVPSAddress        = "127.0.0.1:50003"
	DefaultASAddr             = "http://127.0.0.1:50004"
	DefaultPoolSize           = 100
	DefaultLocalFsDir         = "/opt/confidential-containers/storage/local_fs"
	DefaultLocalJSONDir       = "/opt/confidential-containers/storage/local_json"
	DefaultPostgresDB         = "postgres"
	DefaultPostgresUser       = "postgres"
	DefaultPostgresPort       = 5432
	DefaultPostgresHost       = "localhost"
	DefaultRedisURL           = "redis://127.0.0.1:6379"
	DefaultNVIDIARemoteURL    = "https://nras.attestation.nvidia.com/v4/attest"
	DefaultTrustedAKKeysDir   = "/etc/tpm/trusted_ak_keys"
	DefaultMaxTrustedAKKeys   = 100
	DefaultKDSBaseURL         = "https://kdsintf.amd.com"
	DefaultKDSOfflineStore    = "/opt/confidential-containers/attestation-service/kds-store"
	DefaultResourceBackend    = "kvstorage"
)

// Environment variables that override storage settings.
const (
	EnvPostgresURL = "POSTGRES_URL"
	EnvRedisURL    = "REDIS_URL"
)

// KBS is the whole KBS configuration file.
type KBS struct {
	HTTPServer         HTTPServer
	Admin              Admin
	AttestationToken   AttestationToken
	AttestationService AttestationService
	StorageBackend     StorageBackend
	// SessionStorageType is the storage type of the RCAR session namespace;
	// empty means StorageBackend.StorageType (see SessionStorage).
	SessionStorageType StorageType
	Plugins            []Plugin
	Sigil              Sigil
}

// SessionStorage returns the effective storage type for sessions.
func (k *KBS) SessionStorage() StorageType {
	if k.SessionStorageType != "" {
		return k.SessionStorageType
	}
	return k.StorageBackend.StorageType
}

// HTTPServer is [http_server].
type HTTPServer struct {
	Sockets      []netip.AddrPort
	InsecureHTTP bool
	PrivateKey   string // PEM path
	Certificate  string // PEM path
	// PayloadRequestSize is the request body limit in MiB.
	PayloadRequestSize uint32
	// WorkerCount is the number of HTTP workers; 0 means the number of CPUs.
	WorkerCount   int
	TLSProfile    TLSProfile
	TLSMinVersion TLSVersion // empty: from the profile
	TLSMaxVersion TLSVersion // empty: from the profile
	TLSCiphers    string     // OpenSSL cipher list; empty: from the profile
	TLSGroups     string     // colon-separated; empty: automatic
	// Per-client-IP rate limit of POST /kbs/v0/auth; 0 means unlimited.
	AuthRateLimitPerSecond uint32
	AuthRateLimitBurst     uint32
}

// PayloadLimit returns the request body limit in bytes.
func (h *HTTPServer) PayloadLimit() int64 { return int64(h.PayloadRequestSize) << 20 }

// TLSVersions returns the effective minimum and maximum TLS versions: the
// explicit tls_min_version/tls_max_version, else the profile's.
func (h *HTTPServer) TLSVersions() (lo, hi TLSVersion) {
	lo, hi = TLS12, TLS13
	if h.TLSProfile == TLSProfileModern {
		lo = TLS13
	}
	if h.TLSMinVersion != "" {
		lo = h.TLSMinVersion
	}
	if h.TLSMaxVersion != "" {
		hi = h.TLSMaxVersion
	}
	return lo, hi
}

// TLSProfile is a Mozilla-style TLS profile name.
type TLSProfile string

// TLS profiles.
const (
	TLSProfileOld          TLSProfile = "old"          // TLS 1.2+, legacy ciphers
	TLSProfileIntermediate TLSProfile = "intermediate" // TLS 1.2 and 1.3 (default)
	TLSProfileModern       TLSProfile = "modern"       // TLS 1.3 only
	TLSProfileCustom       TLSProfile = "custom"       // tls_* keys decide
)

// TLSVersion is "1.2" or "1.3".
type TLSVersion string

// TLS versions.
const (
	TLS12 TLSVersion = "1.2"
	TLS13 TLSVersion = "1.3"
)

// AuthorizationMode is [admin] authorization_mode.
type AuthorizationMode string

// Admin authorization modes.
const (
	InsecureAllowAll           AuthorizationMode = "InsecureAllowAll"
	DenyAll                    AuthorizationMode = "DenyAll"
	AuthenticatedAuthorization AuthorizationMode = "AuthenticatedAuthorization"
)

// Admin is [admin]. BearerJWT and RegexACL are set only for
// AuthenticatedAuthorization.
type Admin struct {
	AuthorizationMode AuthorizationMode
	BearerJWT         *BearerJWT // [admin.authentication.bearer_jwt]
	RegexACL          *RegexACL  // [admin.authorization.regex_acl]
}

// BearerJWT lists the identity providers tried in order.
type BearerJWT struct {
	IdentityProviders []IdentityProvider
}

// IdentityProvider verifies admin JWTs. At least one of PublicKeyURI and
// JWKSetURI is set; empty Issuer/Audience are not checked.
type IdentityProvider struct {
	Issuer       string
	Audience     string
	PublicKeyURI string // PEM key: https://, file:// or a path
	JWKSetURI    string // JWKS: https://, file:// or a path
}

// RegexACL maps roles to allowed request URIs. An empty list denies all.
type RegexACL struct {
	ACLs []ACL
}

// ACL allows Role to call request URIs (path plus query) matching
// AllowedEndpoints, which is anchored "^/kbs…$".
type ACL struct {
	Role             string
	AllowedEndpoints string
	Regexp           *regexp.Regexp // compiled AllowedEndpoints
}

// AttestationToken is [attestation_token]: how the KBS verifies tokens.
type AttestationToken struct {
	TrustedJWKSets    []string // file://, https:// or paths
	TrustedCertsPaths []string // PEM bundles
	ExtraTEEKeyPaths  []string // JSON pointers tried first
	InsecureHeaderJWK bool
}

// HasTrustAnchor reports whether tokens can be verified at all (Trustee
// refuses to start otherwise).
func (a *AttestationToken) HasTrustAnchor() bool {
	return len(a.TrustedJWKSets) > 0 || len(a.TrustedCertsPaths) > 0 || a.InsecureHeaderJWK
}

// ASType selects the attestation service.
type ASType string

// Attestation service types (the canonical spellings; CoCoASBuiltIn,
// CoCoASGrpc and IntelTA are accepted as aliases).
const (
	ASBuiltin ASType = "coco_as_builtin"
	ASGRPC    ASType = "coco_as_grpc"
	ASIntelTA ASType = "intel_ta"
)

// AttestationService is [attestation_service]. Exactly one of Builtin, GRPC
// and IntelTA is set, matching Type.
type AttestationService struct {
	Type ASType
	// Timeout is the RCAR session lifetime in minutes.
	Timeout int64
	Builtin *BuiltinAS
	GRPC    *GRPCAS
	IntelTA *IntelTA
}

// SessionTimeout returns Timeout as a duration.
func (a *AttestationService) SessionTimeout() time.Duration {
	return time.Duration(a.Timeout) * time.Minute
}

// BuiltinAS is the in-process attestation service's configuration.
type BuiltinAS struct {
	// StorageType overrides the storage type of AS policies and the builtin
	// RVPS; empty means [storage_backend] storage_type.
	StorageType            StorageType
	RVPS                   RVPS
	AttestationTokenBroker TokenBroker
	VerifierConfig         *VerifierConfig // nil: verifier defaults
}

// RVPSType selects the reference value provider.
type RVPSType string

// RVPS types.
const (
	RVPSBuiltIn    RVPSType = "BuiltIn"
	RVPSGrpcRemote RVPSType = "GrpcRemote"
)

// RVPS is rvps_config.
type RVPS struct {
	Type RVPSType
	// BuiltIn: extractor configuration (nil: all extractors) and an optional
	// storage type override for the reference_value namespace.
	Extractors  map[string]any
	StorageType StorageType
	// GrpcRemote: the RVPS address.
	Address string
}

// RemoteURL returns Address with "http://" prefixed when it has no scheme.
func (r *RVPS) RemoteURL() string {
	if strings.Contains(r.Address, "://") {
		return r.Address
	}
	return "http://" + r.Address
}

// TokenBroker is attestation_token_broker (the EAR token issuer).
type TokenBroker struct {
	DurationMin   int64
	IssuerName    string
	DeveloperName string
	// BuildName is the EAR verifier-id build; empty means the attestation
	// service's own name and version.
	BuildName   string
	ProfileName string
	Signer      *Signer // nil: ephemeral P-256 key, no x5c
	// VerboseToken embeds raw evidence in tokens (the additional-evidence
	// string, device measurement lists). Sigil's default is false, unlike
	// Trustee's: multi-device tokens otherwise overflow HTTP header limits
	// as Bearer tokens (docs/compatibility.md).
	VerboseToken bool
}

// Signer is the token signing key (EC P-256 PEM) and optional certificates.
type Signer struct {
	KeyPath  string
	CertURL  string // becomes the JWK x5u
	CertPath string // PEM chain, leaf first; becomes the JWK x5c
}

// VerifierConfig is verifier_config; nil members use the verifier defaults.
type VerifierConfig struct {
	NVIDIA    *NVIDIAVerifier
	TPM       *TPMVerifier
	SNP       *SNPVerifier
	DCAP      *DCAPVerifier
	NVIDIADPU map[string]any // nvidia_dpu_verifier, kept as parsed
}

// NVIDIAVerifier is verifier_config.nvidia_verifier.
type NVIDIAVerifier struct {
	Type        string // "Local" or "Remote"
	VerifierURL string // Remote only
}

// TPMVerifier is verifier_config.tpm_verifier.
type TPMVerifier struct {
	TrustedAKKeysDir string
	MaxTrustedAKKeys int64
}

// SNPVerifier is verifier_config.snp_verifier.
type SNPVerifier struct {
	VCEKSources []VCEKSource
}

// VCEKSource is one place to fetch SNP VCEK certificates from.
type VCEKSource struct {
	Type    string // "KDS" or "OfflineStore"
	BaseURL string // KDS
	Path    string // OfflineStore
}

// DCAPVerifier is verifier_config.dcap_verifier.
type DCAPVerifier struct {
	CollateralService string // PCS/PCCS URL or file://
	TCBUpdateType     string // "early" (default) or "standard"
}

// GRPCAS is a remote CoCo AS reached over gRPC.
type GRPCAS struct {
	ASAddr   string
	PoolSize int64
}

// IntelTA is Intel Trust Authority.
type IntelTA struct {
	BaseURL              string
	APIKey               string
	CertsFile            string
	PolicyIDs            []string
	AllowUnmatchedPolicy bool
}

// StorageType names a key-value backend.
type StorageType string

// Storage types (canonical spellings; memory, local_json, local_fs, postgres
// and redis are accepted as aliases).
const (
	StorageMemory    StorageType = "Memory"
	StorageLocalJSON StorageType = "LocalJson"
	StorageLocalFs   StorageType = "LocalFs"
	StoragePostgres  StorageType = "Postgres"
	StorageRedis     StorageType = "Redis"
)

// ParseStorageType accepts both spellings of each storage type.
func ParseStorageType(s string) (StorageType, error) {
	switch s {
	case "Memory", "memory":
		return StorageMemory, nil
	case "LocalJson", "local_json":
		return StorageLocalJSON, nil
	case "LocalFs", "local_fs":
		return StorageLocalFs, nil
	case "Postgres", "postgres":
		return StoragePostgres, nil
	case "Redis", "redis":
		return StorageRedis, nil
	}
	return "", fmt.Errorf("unknown storage type %q (want Memory, LocalJson, LocalFs, Postgres or Redis)", s)
}

// StorageBackend is [storage_backend]. Backend sub-tables that were not in
// the file are nil (except Postgres/Redis when the environment supplies a
// URL).
type StorageBackend struct {
	StorageType StorageType
	LocalFs     *LocalFsBackend
	LocalJSON   *LocalJSONBackend
	Postgres    *PostgresBackend
	Redis       *RedisBackend
}

// LocalFsBackend is backends.local_fs.
type LocalFsBackend struct {
	DirPath string
}

// LocalJSONBackend is backends.local_json.
type LocalJSONBackend struct {
	FileDirPath string
}

// PostgresBackend is backends.postgres. URL, from POSTGRES_URL, wins over
// the individual fields.
type PostgresBackend struct {
	DB       string
	Username string
	Password string
	Port     uint16
	Host     string
	URL      string
}

// ConnString returns URL, or a postgres:// URL built from the fields.
func (p *PostgresBackend) ConnString() string {
	if p.URL != "" {
		return p.URL
	}
	u := url.URL{
		Scheme: "postgres",
		Host:   netJoin(p.Host, p.Port),
		Path:   "/" + p.DB,
	}
	if p.Password != "" {
		u.User = url.UserPassword(p.Username, p.Password)
	} else {
		u.User = url.User(p.Username)
	}
	return u.String()
}

func netJoin(host string, port uint16) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// RedisBackend is backends.redis.
type RedisBackend struct {
	URL string
}

// Plugin names (canonical; the config aliases are accepted).
const (
	PluginResource    = "resource"    // alias ResourceStorage
	PluginSample      = "sample"      // alias Sample
	PluginNebulaCA    = "nebula-ca"   // alias NebulaCaPlugin
	PluginPKCS11      = "pkcs11"      // alias Pkcs11
	PluginExternal    = "external"    // alias ExternalPlugin
	PluginProvisioner = "provisioner" // alias Provisioner
)

// Plugin is one [[plugins]] entry. Resource or Sample is set for the plugins
// Sigil implements; other Trustee plugins keep their keys in Options and are
// reported as unsupported.
type Plugin struct {
	Name     string
	Resource *ResourcePlugin
	Sample   *SamplePlugin
	Options  map[string]any
}

// Supported reports whether Sigil implements the plugin.
func (p *Plugin) Supported() bool {
	return p.Sample != nil || (p.Resource != nil && p.Resource.StorageBackendType == DefaultResourceBackend)
}

// ResourcePlugin is the resource plugin. With the default "kvstorage"
// backend, resources live in the "repository" namespace of
// [storage_backend]; other backends (Vault, Aws, Gcp, Aliyun) keep their
// keys in Options.
type ResourcePlugin struct {
	StorageBackendType string
	Options            map[string]any
}

// SamplePlugin is the sample plugin.
type SamplePlugin struct {
	Item string
}

// Sigil holds the Sigil-only settings of [sigil] (Trustee ignores the
// table). Zero values mean the documented default; unknown keys are warned
// about like anywhere else.
type Sigil struct {
	// HeaderLimitKiB: header_limit_kib, the request-header budget of one
	// request (16..16384; 0 → 512 KiB).
	HeaderLimitKiB int
	// OfflineCollateral: offline_collateral; unreachable vendor collateral
	// gives "Unknown" claims instead of failing verification.
	OfflineCollateral bool
	// CollateralDir: collateral_dir, an offline collateral store.
	CollateralDir string
	// NVIDIA vendor services and roots: nvidia_rim_url, nvidia_ocsp_url,
	// nvidia_service_key, nvidia_device_roots, nvidia_rim_roots (PEM files).
	NVIDIARIMURL, NVIDIAOCSPURL, NVIDIAServiceKey string
	NVIDIADeviceRoots, NVIDIARIMRoots             string
	// SNPCheckCRL: snp_check_crl (default true), the ASK/ASVK revocation check.
	SNPCheckCRL bool
	// MaxConnections: max_connections (default 4096).
	MaxConnections int
	// MaxSessions: max_sessions, the live RCAR sessions one server holds
	// (default 100000); /auth beyond it gets a retryable 503.
	MaxSessions int
	// HeaderBudgetMiB: header_budget_mib, header bytes above 16 KiB per
	// connection that all unfinished requests may hold together (default 32).
	HeaderBudgetMiB int
	// IdleTimeoutSec: idle_timeout_s, keep-alive idle timeout (default 30).
	IdleTimeoutSec int
	// HeaderTimeoutSec: header_timeout_s, the time a client has to send a
	// request's headers (default 10).
	HeaderTimeoutSec int
	// PolicyTimeoutMs: policy_timeout_ms, the deadline of one policy
	// evaluation, appraisal or resource (default 2000).
	PolicyTimeoutMs int
	// TokenMaxLifetimeMin: token_max_lifetime_min, the longest validity
	// (exp - iat) accepted for attestation tokens presented to the KBS
	// (default: attestation_token_broker.duration_min). Raise it for tokens
	// of another issuer that live longer.
	TokenMaxLifetimeMin int
	// PolicyAllowNetwork: policy_allow_network, lets policies call builtins
	// that reach outside (http.send, net.*, opa.runtime). Default false.
	PolicyAllowNetwork bool
}

// DefaultSigil returns the [sigil] defaults.
func DefaultSigil() Sigil { return Sigil{SNPCheckCRL: true} }

// Default returns the configuration a file with only the required tables
// would give. [http_server] and [admin] are mandatory in a file; Default
// fills them with Trustee's struct defaults (HTTPS on 127.0.0.1:8080,
// InsecureAllowAll).
func Default() *KBS {
	return &KBS{
		HTTPServer: HTTPServer{
			Sockets:            []netip.AddrPort{netip.MustParseAddrPort(DefaultSocket)},
			PayloadRequestSize: DefaultPayloadRequestSize,
			TLSProfile:         TLSProfileIntermediate,
		},
		Admin: Admin{AuthorizationMode: InsecureAllowAll},
		AttestationService: AttestationService{
			Type:    ASBuiltin,
			Timeout: DefaultSessionTimeout,
			Builtin: DefaultBuiltinAS(),
		},
		StorageBackend: StorageBackend{StorageType: StorageMemory},
		Sigil:          DefaultSigil(),
	}
}

// DefaultBuiltinAS returns the builtin attestation service defaults.
func DefaultBuiltinAS() *BuiltinAS {
	return &BuiltinAS{
		RVPS:                   RVPS{Type: RVPSBuiltIn},
		AttestationTokenBroker: DefaultTokenBroker(),
	}
}

// DefaultTokenBroker returns the token broker defaults.
func DefaultTokenBroker() TokenBroker {
	return TokenBroker{
		DurationMin:   DefaultTokenDuration,
		IssuerName:    DefaultIssuerName,
		DeveloperName: DefaultDeveloperName,
		ProfileName:   DefaultProfileName,
		VerboseToken:  false,
	}
}
