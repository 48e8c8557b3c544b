package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"go.yaml.in/yaml/v3"
)

// Formats accepted by Parse.
const (
	FormatTOML = "toml"
	FormatJSON = "json"
	FormatYAML = "yaml"
)

// FormatOf returns the format implied by a file name's extension.
func FormatOf(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".toml":
		return FormatTOML, nil
	case ".json":
		return FormatJSON, nil
	case ".yaml", ".yml":
		return FormatYAML, nil
	}
	return "", fmt.Errorf("config: %s: unsupported extension (want .toml, .json, .yaml or .yml)", path)
}

// Load reads and parses the KBS config file at path, choosing the format by
// extension. getenv supplies environment overrides (nil: none).
func Load(path string, getenv func(string) string) (*KBS, []Warning, error) {
	format, err := FormatOf(path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	k, w, err := Parse(data, format, getenv)
	if err != nil {
		return nil, w, fmt.Errorf("config file %s: %w", path, err)
	}
	return k, w, nil
}

// LogWarnings logs each warning at warn level.
func LogWarnings(logger *slog.Logger, warnings []Warning) {
	for _, w := range warnings {
		logger.Warn("config: "+w.Message, "key", w.Key)
	}
}

// Parse parses a KBS config in the given format ("toml", "json" or "yaml";
// "yml" is accepted too). getenv supplies environment overrides (nil: none).
// The returned error joins one *Error per invalid key.
func Parse(data []byte, format string, getenv func(string) string) (*KBS, []Warning, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	root, err := decodeDocument(data, format)
	if err != nil {
		return nil, nil, err
	}
	d := &decoder{}
	k := d.kbs(d.newTable("", root), getenv)
	if len(d.errs) > 0 {
		return nil, d.warnings, errors.Join(d.errs...)
	}
	return k, d.warnings, nil
}

func decodeDocument(data []byte, format string) (map[string]any, error) {
	root := map[string]any{}
	switch strings.ToLower(format) {
	case FormatTOML:
		if err := toml.Unmarshal(data, &root); err != nil {
			return nil, fmt.Errorf("config: invalid TOML: %w", err)
		}
	case FormatJSON:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&root); err != nil {
			return nil, fmt.Errorf("config: invalid JSON: %w", err)
		}
		if dec.More() {
			return nil, errors.New("config: invalid JSON: trailing data after the top-level object")
		}
	case FormatYAML, "yml":
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("config: invalid YAML: %w", err)
		}
		if v == nil {
			break
		}
		m, ok := asMap(v)
		if !ok {
			return nil, fmt.Errorf("config: invalid YAML: top level is a %s, not a mapping", typeName(v))
		}
		root = m
	default:
		return nil, fmt.Errorf("config: unsupported format %q (want toml, json or yaml)", format)
	}
	if root == nil {
		root = map[string]any{}
	}
	return normalizeValue(root).(map[string]any), nil
}

// normalizeValue gives every format the same generic types, so that values
// kept verbatim (plugin options, [sigil], extractors) do not depend on the
// file format: tables are map[string]any, integers int64, other numbers
// float64.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeValue(e)
		}
		return x
	case map[any]any:
		m, _ := asMap(x)
		return normalizeValue(m)
	case []any:
		for i, e := range x {
			x[i] = normalizeValue(e)
		}
		return x
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case int:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return float64(x)
	}
	return v
}

func (d *decoder) kbs(t *table, getenv func(string) string) *KBS {
	k := Default()

	if hs := t.sub("http_server"); hs != nil {
		d.httpServer(hs, &k.HTTPServer)
	} else if !t.has("http_server") {
		d.fail("http_server", "missing table: [http_server] is required")
	}
	if ad := t.sub("admin"); ad != nil {
		d.admin(ad, &k.Admin)
	} else if !t.has("admin") {
		d.fail("admin", "missing table: [admin] is required (authorization_mode = InsecureAllowAll, DenyAll or AuthenticatedAuthorization)")
	}
	if at := t.sub("attestation_token"); at != nil {
		d.attestationToken(at, &k.AttestationToken)
	} else if !t.has("attestation_token") && !k.AttestationToken.HasTrustAnchor() {
		d.warn("attestation_token", "missing table: no attestation-token trust anchor, so the KBS cannot verify attestation tokens (Trustee refuses to start)")
	}
	if as := t.sub("attestation_service"); as != nil {
		d.attestationService(as, &k.AttestationService)
	}
	if sb := t.sub("storage_backend"); sb != nil {
		d.storageBackend(sb, &k.StorageBackend)
	}
	d.storageEnv(&k.StorageBackend, getenv)
	var sst string
	if t.str("session_storage_type", &sst) {
		k.SessionStorageType = d.storageType(t.key("session_storage_type"), sst)
	}
	k.Plugins = d.plugins(t.subs("plugins"))
	k.Sigil = DefaultSigil()
	if sg := t.sub("sigil"); sg != nil {
		d.sigil(sg, &k.Sigil)
	}
	t.dead("policy_engine")
	t.finish()

	d.checkStorageSelections(k)
	return k
}

func (d *decoder) httpServer(t *table, h *HTTPServer) {
	var sockets []string
	if t.strs("sockets", &sockets) {
		h.Sockets = h.Sockets[:0:0]
		for i, s := range sockets {
			ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
			if err != nil {
				d.failErr(fmt.Sprintf("%s[%d]", t.key("sockets"), i), err, "invalid socket address %q (want IP:port)", s)
				continue
			}
			h.Sockets = append(h.Sockets, ap)
		}
		if len(sockets) == 0 {
			d.fail(t.key("sockets"), "at least one socket address is required")
		}
	}
	t.boolean("insecure_http", &h.InsecureHTTP)
	t.str("private_key", &h.PrivateKey)
	t.str("certificate", &h.Certificate)
	var n int64
	if t.integer("payload_request_size", 0, math.MaxUint32, &n) {
		if n == 0 {
			d.fail(t.key("payload_request_size"), "must be at least 1 (MiB)")
		}
		h.PayloadRequestSize = uint32(n)
	}
	if t.integer("worker_count", 0, 1<<16, &n) {
		if n == 0 {
			d.fail(t.key("worker_count"), "must be at least 1")
		}
		h.WorkerCount = int(n)
		d.warn(t.key("worker_count"), "has no effect in Sigil: every request is served on its own goroutine, "+
			"over all CPUs (GOMAXPROCS bounds them); connections are bounded by [sigil] max_connections")
	}
	var s string
	if t.str("tls_profile", &s) {
		switch p := TLSProfile(strings.ToLower(s)); p {
		case TLSProfileOld, TLSProfileIntermediate, TLSProfileModern, TLSProfileCustom:
			h.TLSProfile = p
		default:
			d.fail(t.key("tls_profile"), "unknown TLS profile %q (want old, intermediate, modern or custom)", s)
		}
	}
	for _, f := range []struct {
		key string
		dst *TLSVersion
	}{{"tls_min_version", &h.TLSMinVersion}, {"tls_max_version", &h.TLSMaxVersion}} {
		if t.str(f.key, &s) {
			switch v := TLSVersion(strings.TrimPrefix(strings.TrimPrefix(s, "TLSv"), "v")); v {
			case TLS12, TLS13:
				*f.dst = v
			default:
				d.fail(t.key(f.key), "unsupported TLS version %q (want \"1.2\" or \"1.3\")", s)
			}
		}
	}
	t.str("tls_ciphers", &h.TLSCiphers)
	t.str("tls_groups", &h.TLSGroups)
	if t.integer("auth_rate_limit_per_second", 0, math.MaxUint32, &n) {
		h.AuthRateLimitPerSecond = uint32(n)
	}
	if t.integer("auth_rate_limit_burst", 0, math.MaxUint32, &n) {
		h.AuthRateLimitBurst = uint32(n)
	}
	t.finish()

	if lo, hi := h.TLSVersions(); lo > hi {
		key := t.key("tls_min_version")
		if h.TLSMinVersion == "" {
			key = t.key("tls_max_version")
		}
		d.fail(key, "minimum TLS version %s is greater than maximum %s", lo, hi)
	}
	if h.TLSProfile != TLSProfileCustom && (h.TLSMinVersion != "" || h.TLSMaxVersion != "" || h.TLSCiphers != "") {
		d.warn(t.key("tls_profile"), "tls_min_version/tls_max_version/tls_ciphers override the %q profile", h.TLSProfile)
	}
	if !h.InsecureHTTP {
		var missing []string
		if h.PrivateKey == "" {
			missing = append(missing, t.key("private_key"))
		}
		if h.Certificate == "" {
			missing = append(missing, t.key("certificate"))
		}
		if len(missing) > 0 {
			d.fail(missing[0], "Missing certificate: HTTPS (insecure_http = false) requires %s", strings.Join([]string{t.key("private_key"), t.key("certificate")}, " and "))
		}
	}
}

func (d *decoder) admin(t *table, a *Admin) {
	// Trustee rejects unknown keys in [admin]; so do we.
	if t.has("type") {
		t.raw("type")
		d.fail(t.key("type"), "the legacy `type` key is not supported; use authorization_mode = \"InsecureAllowAll\", \"DenyAll\" or \"AuthenticatedAuthorization\"")
	}
	var mode string
	if !t.str("authorization_mode", &mode) {
		if !t.has("authorization_mode") {
			d.fail(t.key("authorization_mode"), "missing: set authorization_mode = \"InsecureAllowAll\", \"DenyAll\" or \"AuthenticatedAuthorization\"")
		}
		t.rest()
		return
	}
	switch m := AuthorizationMode(mode); m {
	case InsecureAllowAll, DenyAll:
		a.AuthorizationMode = m
		for _, k := range []string{"authentication", "authorization"} {
			if t.has(k) {
				t.raw(k)
				d.fail(t.key(k), "only valid with authorization_mode = \"AuthenticatedAuthorization\"")
			}
		}
	case AuthenticatedAuthorization:
		a.AuthorizationMode = m
		a.BearerJWT = d.adminAuthentication(t)
		a.RegexACL = d.adminAuthorization(t)
	default:
		d.fail(t.key("authorization_mode"), "unknown authorization mode %q (want InsecureAllowAll, DenyAll or AuthenticatedAuthorization)", mode)
	}
	d.rejectUnknown(t)
}

// rejectUnknown turns every unread key of t into an error.
func (d *decoder) rejectUnknown(t *table) {
	for k := range t.rest() {
		d.fail(t.key(k), "unknown key (not allowed in [admin])")
	}
}

func (d *decoder) adminAuthentication(t *table) *BearerJWT {
	auth := t.sub("authentication")
	if auth == nil {
		if !t.has("authentication") {
			d.fail(t.key("authentication.bearer_jwt"), "missing table: AuthenticatedAuthorization requires [admin.authentication.bearer_jwt]")
		}
		return nil
	}
	if auth.has("type") {
		auth.raw("type")
		d.fail(auth.key("type"), "the adjacent-tag form `type = …` is not supported; use a [admin.authentication.bearer_jwt] table")
	}
	bj := auth.sub("bearer_jwt")
	defer d.rejectUnknown(auth)
	if bj == nil {
		if !auth.has("bearer_jwt") {
			d.fail(auth.key("bearer_jwt"), "missing table: AuthenticatedAuthorization requires [admin.authentication.bearer_jwt]")
		}
		return nil
	}
	out := &BearerJWT{}
	for _, p := range bj.subs("identity_providers") {
		var ip IdentityProvider
		p.str("issuer", &ip.Issuer)
		p.str("audience", &ip.Audience)
		p.str("public_key_uri", &ip.PublicKeyURI)
		p.str("jwk_set_uri", &ip.JWKSetURI)
		if ip.PublicKeyURI == "" && ip.JWKSetURI == "" {
			d.fail(p.path, "identity provider needs public_key_uri or jwk_set_uri")
		}
		d.rejectUnknown(p)
		out.IdentityProviders = append(out.IdentityProviders, ip)
	}
	if len(out.IdentityProviders) == 0 {
		d.fail(bj.key("identity_providers"), "at least one identity provider is required")
	}
	d.rejectUnknown(bj)
	return out
}

func (d *decoder) adminAuthorization(t *table) *RegexACL {
	authz := t.sub("authorization")
	if authz == nil {
		if !t.has("authorization") {
			d.fail(t.key("authorization.regex_acl"), "missing table: AuthenticatedAuthorization requires [admin.authorization.regex_acl]")
		}
		return nil
	}
	if authz.has("type") {
		authz.raw("type")
		d.fail(authz.key("type"), "the adjacent-tag form `type = …` is not supported; use a [admin.authorization.regex_acl] table")
	}
	ra := authz.sub("regex_acl")
	defer d.rejectUnknown(authz)
	if ra == nil {
		if !authz.has("regex_acl") {
			d.fail(authz.key("regex_acl"), "missing table: AuthenticatedAuthorization requires [admin.authorization.regex_acl]")
		}
		return nil
	}
	out := &RegexACL{}
	for _, e := range ra.subs("acls") {
		var acl ACL
		if !e.str("role", &acl.Role) {
			d.fail(e.key("role"), "missing")
		}
		if !e.str("allowed_endpoints", &acl.AllowedEndpoints) {
			d.fail(e.key("allowed_endpoints"), "missing")
		} else if !strings.HasPrefix(acl.AllowedEndpoints, "^/kbs") || !strings.HasSuffix(acl.AllowedEndpoints, "$") {
			d.fail(e.key("allowed_endpoints"), "Admin Role regex must be anchored. %q must start with ^/kbs and end with $", acl.AllowedEndpoints)
		} else if re, err := regexp.Compile(acl.AllowedEndpoints); err != nil {
			d.failErr(e.key("allowed_endpoints"), err, "invalid regex %q: %v", acl.AllowedEndpoints, err)
		} else {
			acl.Regexp = re
		}
		d.rejectUnknown(e)
		out.ACLs = append(out.ACLs, acl)
	}
	d.rejectUnknown(ra)
	return out
}

func (d *decoder) attestationToken(t *table, a *AttestationToken) {
	t.strs("trusted_jwk_sets", &a.TrustedJWKSets)
	t.strs("trusted_certs_paths", &a.TrustedCertsPaths)
	t.strs("extra_teekey_paths", &a.ExtraTEEKeyPaths)
	t.boolean("insecure_header_jwk", &a.InsecureHeaderJWK)
	if t.has("insecure_key") {
		t.raw("insecure_key")
		d.warn(t.key("insecure_key"), "obsolete Trustee key (renamed insecure_header_jwk); ignored")
	}
	t.finish()
	if !a.HasTrustAnchor() {
		d.fail(t.path, "no trust anchor: set trusted_jwk_sets or trusted_certs_paths, or insecure_header_jwk = true")
	}
}

func (d *decoder) attestationService(t *table, a *AttestationService) {
	var typ string
	if !t.str("type", &typ) {
		if !t.has("type") {
			d.fail(t.key("type"), "missing: set type = \"coco_as_builtin\", \"coco_as_grpc\" or \"intel_ta\"")
		}
		t.rest()
		return
	}
	if t.integer("timeout", math.MinInt64, math.MaxInt64, &a.Timeout) && a.Timeout <= 0 {
		d.fail(t.key("timeout"), "must be a positive number of minutes")
	}
	a.Builtin = nil
	switch typ {
	case "coco_as_builtin", "CoCoASBuiltIn":
		a.Type = ASBuiltin
		a.Builtin = d.builtinAS(t)
	case "coco_as_grpc", "CoCoASGrpc":
		a.Type = ASGRPC
		g := &GRPCAS{ASAddr: DefaultASAddr, PoolSize: DefaultPoolSize}
		t.str("as_addr", &g.ASAddr)
		if t.integer("pool_size", math.MinInt64, math.MaxInt64, &g.PoolSize) && g.PoolSize <= 0 {
			d.fail(t.key("pool_size"), "must be positive")
		}
		a.GRPC = g
	case "intel_ta", "IntelTA":
		a.Type = ASIntelTA
		it := &IntelTA{}
		for _, f := range []struct {
			key string
			dst *string
		}{{"base_url", &it.BaseURL}, {"api_key", &it.APIKey}, {"certs_file", &it.CertsFile}} {
			if !t.str(f.key, f.dst) && !t.has(f.key) {
				d.fail(t.key(f.key), "missing (required for intel_ta)")
			}
		}
		t.strs("policy_ids", &it.PolicyIDs)
		t.boolean("allow_unmatched_policy", &it.AllowUnmatchedPolicy)
		a.IntelTA = it
	default:
		d.fail(t.key("type"), "unknown attestation service type %q (want coco_as_builtin, coco_as_grpc or intel_ta)", typ)
		t.rest()
		return
	}
	t.dead("work_dir", "policy_engine", "attestation_token_type", "attestation_token_config")
	t.finish()
}

func (d *decoder) builtinAS(t *table) *BuiltinAS {
	b := DefaultBuiltinAS()
	var s string
	if t.str("storage_type", &s) {
		b.StorageType = d.storageType(t.key("storage_type"), s)
	}
	if r := t.sub("rvps_config"); r != nil {
		d.rvps(r, &b.RVPS)
	}
	if tb := t.sub("attestation_token_broker"); tb != nil {
		d.tokenBroker(tb, &b.AttestationTokenBroker)
	}
	if vc := t.sub("verifier_config"); vc != nil {
		b.VerifierConfig = d.verifierConfig(vc)
	}
	return b
}

func (d *decoder) rvps(t *table, r *RVPS) {
	typ := string(RVPSBuiltIn)
	t.str("type", &typ)
	switch RVPSType(typ) {
	case RVPSBuiltIn:
		r.Type = RVPSBuiltIn
		if e := t.sub("extractors"); e != nil {
			d.warn(t.key("extractors"), "has no effect in Sigil: the built-in RVPS always offers the sample and swid extractors "+
				"(neither checks manifest signatures; restrict who may POST reference-value with the admin ACL)")
			r.Extractors = e.rest()
			if r.Extractors == nil {
				r.Extractors = map[string]any{}
			}
		}
		var s string
		if t.str("storage_type", &s) {
			r.StorageType = d.storageType(t.key("storage_type"), s)
		}
		t.dead("store_type", "store_config", "storage")
	case RVPSGrpcRemote:
		r.Type = RVPSGrpcRemote
		r.Address = DefaultRVPSAddress
		t.str("address", &r.Address)
		t.dead("remote_addr")
	default:
		d.fail(t.key("type"), "unknown RVPS type %q (want BuiltIn or GrpcRemote)", typ)
		t.rest()
	}
	t.finish()
}

func (d *decoder) tokenBroker(t *table, tb *TokenBroker) {
	if t.integer("duration_min", math.MinInt64, math.MaxInt64, &tb.DurationMin) && tb.DurationMin <= 0 {
		d.fail(t.key("duration_min"), "must be a positive number of minutes")
	}
	t.str("issuer_name", &tb.IssuerName)
	t.str("developer_name", &tb.DeveloperName)
	t.str("build_name", &tb.BuildName)
	t.str("profile_name", &tb.ProfileName)
	t.boolean("verbose_token", &tb.VerboseToken)
	if s := t.sub("signer"); s != nil {
		sg := &Signer{}
		if !s.str("key_path", &sg.KeyPath) || sg.KeyPath == "" {
			d.fail(s.key("key_path"), "missing: a signer needs key_path (EC P-256 private key PEM)")
		}
		s.str("cert_url", &sg.CertURL)
		s.str("cert_path", &sg.CertPath)
		s.finish()
		tb.Signer = sg
	}
	t.dead("type", "policy_dir")
	t.finish()
}

func (d *decoder) verifierConfig(t *table) *VerifierConfig {
	vc := &VerifierConfig{}
	if n := t.sub("nvidia_verifier"); n != nil {
		nv := &NVIDIAVerifier{Type: "Local"}
		n.str("type", &nv.Type)
		switch nv.Type {
		case "Local":
		case "Remote":
			nv.VerifierURL = DefaultNVIDIARemoteURL
			n.str("verifier_url", &nv.VerifierURL)
		default:
			d.fail(n.key("type"), "unknown NVIDIA verifier type %q (want Local or Remote)", nv.Type)
		}
		n.finish()
		vc.NVIDIA = nv
	}
	if p := t.sub("tpm_verifier"); p != nil {
		tv := &TPMVerifier{TrustedAKKeysDir: DefaultTrustedAKKeysDir, MaxTrustedAKKeys: DefaultMaxTrustedAKKeys}
		p.str("trusted_ak_keys_dir", &tv.TrustedAKKeysDir)
		p.integer("max_trusted_ak_keys", 0, math.MaxInt64, &tv.MaxTrustedAKKeys)
		p.finish()
		vc.TPM = tv
	}
	if s := t.sub("snp_verifier"); s != nil {
		vc.SNP = d.snpVerifier(s)
	}
	if c := t.sub("dcap_verifier"); c != nil {
		dv := &DCAPVerifier{TCBUpdateType: "early"}
		c.str("collateral_service", &dv.CollateralService)
		if c.str("tcb_update_type", &dv.TCBUpdateType) {
			dv.TCBUpdateType = strings.ToLower(dv.TCBUpdateType)
			if dv.TCBUpdateType != "early" && dv.TCBUpdateType != "standard" {
				d.fail(c.key("tcb_update_type"), "unknown TCB update type %q (want early or standard)", dv.TCBUpdateType)
			}
		}
		c.finish()
		vc.DCAP = dv
	}
	if dpu := t.sub("nvidia_dpu_verifier"); dpu != nil {
		d.warn(t.key("nvidia_dpu_verifier"), "has no effect: Sigil has no NVIDIA DPU verifier, and nvidia-dpu evidence is refused")
		vc.NVIDIADPU = dpu.rest()
		if vc.NVIDIADPU == nil {
			vc.NVIDIADPU = map[string]any{}
		}
	}
	t.finish()
	return vc
}

func (d *decoder) snpVerifier(t *table) *SNPVerifier {
	sv := &SNPVerifier{}
	var srcs []*table
	if v, ok := t.m["vcek_sources"]; ok {
		if _, single := asMap(v); single {
			srcs = []*table{t.sub("vcek_sources")}
		} else {
			srcs = t.subs("vcek_sources")
		}
	}
	for _, s := range srcs {
		src := VCEKSource{Type: "KDS"}
		s.str("type", &src.Type)
		switch src.Type {
		case "KDS":
			src.BaseURL = DefaultKDSBaseURL
			s.str("base_url", &src.BaseURL)
		case "OfflineStore":
			src.Path = DefaultKDSOfflineStore
			s.str("path", &src.Path)
		default:
			d.fail(s.key("type"), "unknown VCEK source type %q (want KDS or OfflineStore)", src.Type)
		}
		s.finish()
		sv.VCEKSources = append(sv.VCEKSources, src)
	}
	if len(sv.VCEKSources) == 0 {
		sv.VCEKSources = []VCEKSource{{Type: "KDS", BaseURL: DefaultKDSBaseURL}}
	}
	t.finish()
	return sv
}

func (d *decoder) storageType(key, s string) StorageType {
	st, err := ParseStorageType(s)
	if err != nil {
		d.failErr(key, err, "%v", err)
	}
	return st
}

func (d *decoder) storageBackend(t *table, sb *StorageBackend) {
	var s string
	if t.str("storage_type", &s) {
		sb.StorageType = d.storageType(t.key("storage_type"), s)
	}
	if b := t.sub("backends"); b != nil {
		if fs := b.sub("local_fs"); fs != nil {
			sb.LocalFs = &LocalFsBackend{DirPath: DefaultLocalFsDir}
			fs.str("dir_path", &sb.LocalFs.DirPath)
			fs.finish()
		}
		if js := b.sub("local_json"); js != nil {
			sb.LocalJSON = &LocalJSONBackend{FileDirPath: DefaultLocalJSONDir}
			js.str("file_dir_path", &sb.LocalJSON.FileDirPath)
			js.finish()
		}
		if pg := b.sub("postgres"); pg != nil {
			p := defaultPostgres()
			pg.str("db", &p.DB)
			pg.str("username", &p.Username)
			pg.str("password", &p.Password)
			pg.str("host", &p.Host)
			var n int64
			if pg.integer("port", 1, math.MaxUint16, &n) {
				p.Port = uint16(n)
			}
			pg.str("url", &p.URL)
			pg.finish()
			sb.Postgres = p
		}
		if rd := b.sub("redis"); rd != nil {
			sb.Redis = &RedisBackend{URL: DefaultRedisURL}
			rd.str("url", &sb.Redis.URL)
			rd.finish()
		}
		b.finish()
	}
	t.finish()
}

func defaultPostgres() *PostgresBackend {
	return &PostgresBackend{
		DB:       DefaultPostgresDB,
		Username: DefaultPostgresUser,
		Port:     DefaultPostgresPort,
		Host:     DefaultPostgresHost,
	}
}

// storageEnv applies POSTGRES_URL and REDIS_URL. A set variable also stands
// in for a missing backends.postgres / backends.redis table.
func (d *decoder) storageEnv(sb *StorageBackend, getenv func(string) string) {
	if u := getenv(EnvPostgresURL); u != "" {
		if sb.Postgres == nil {
			sb.Postgres = defaultPostgres()
		}
		sb.Postgres.URL = u
	}
	if u := getenv(EnvRedisURL); u != "" {
		if sb.Redis == nil {
			sb.Redis = &RedisBackend{}
		}
		sb.Redis.URL = u
	}
}

// checkStorageSelections requires the backend sub-table of every storage
// type the configuration selects.
func (d *decoder) checkStorageSelections(k *KBS) {
	sb := &k.StorageBackend
	check := func(key string, st StorageType) {
		var missing string
		switch st {
		case StorageLocalFs:
			if sb.LocalFs == nil {
				missing = "local_fs"
			}
		case StorageLocalJSON:
			if sb.LocalJSON == nil {
				missing = "local_json"
			}
		case StoragePostgres:
			if sb.Postgres == nil {
				missing = "postgres"
			}
		case StorageRedis:
			if sb.Redis == nil {
				missing = "redis"
			}
		}
		if missing != "" {
			d.fail("storage_backend.backends."+missing, "missing table: %s = %q requires [storage_backend.backends.%s]", key, st, missing)
		}
	}
	check("storage_backend.storage_type", sb.StorageType)
	check("session_storage_type", k.SessionStorageType)
	if b := k.AttestationService.Builtin; b != nil {
		check("attestation_service.storage_type", b.StorageType)
		check("attestation_service.rvps_config.storage_type", b.RVPS.StorageType)
	}
}

func (d *decoder) plugins(ts []*table) []Plugin {
	var out []Plugin
	seen := map[string]string{}
	for _, t := range ts {
		var name string
		if !t.str("name", &name) {
			if !t.has("name") {
				d.fail(t.key("name"), "missing plugin name")
			}
			t.rest()
			continue
		}
		p := Plugin{}
		switch name {
		case PluginResource, "ResourceStorage":
			p.Name = PluginResource
			r := &ResourcePlugin{StorageBackendType: DefaultResourceBackend}
			if t.str("storage_backend_type", &r.StorageBackendType) {
				switch strings.ToLower(r.StorageBackendType) {
				case "kvstorage":
					r.StorageBackendType = DefaultResourceBackend
				case "vault", "aws", "gcp", "aliyun":
					d.warn(t.key("storage_backend_type"), "resource backend %q is not supported by Sigil; the resource plugin is disabled", r.StorageBackendType)
					r.Options = t.rest()
				default:
					d.fail(t.key("storage_backend_type"), "unknown resource backend %q (want kvstorage, Vault, Aws, Gcp or Aliyun)", r.StorageBackendType)
				}
			}
			p.Resource = r
		case PluginSample, "Sample":
			p.Name = PluginSample
			p.Sample = &SamplePlugin{}
			if !t.str("item", &p.Sample.Item) && !t.has("item") {
				d.fail(t.key("item"), "missing (required by the sample plugin)")
			}
		case PluginNebulaCA, "NebulaCaPlugin", PluginPKCS11, "Pkcs11", PluginExternal, "ExternalPlugin", PluginProvisioner, "Provisioner":
			p.Name = map[string]string{
				"NebulaCaPlugin": PluginNebulaCA, "Pkcs11": PluginPKCS11,
				"ExternalPlugin": PluginExternal, "Provisioner": PluginProvisioner,
			}[name]
			if p.Name == "" {
				p.Name = name
			}
			p.Options = t.rest()
			d.warn(t.key("name"), "plugin %q is not supported by Sigil; ignored", name)
		default:
			d.fail(t.key("name"), "unknown plugin %q", name)
			t.rest()
			continue
		}
		if prev, dup := seen[p.Name]; dup {
			d.fail(t.key("name"), "plugin %q is configured twice (first at %s)", p.Name, prev)
		}
		seen[p.Name] = t.path
		t.finish()
		out = append(out, p)
	}
	return out
}

func (d *decoder) sigil(t *table, s *Sigil) {
	defer t.finish()
	ints := []struct {
		key    string
		lo, hi int64
		dst    *int
	}{
		{"header_limit_kib", 16, 16 << 10, &s.HeaderLimitKiB},
		{"max_connections", 16, 1 << 20, &s.MaxConnections},
		{"max_sessions", 1, 1 << 30, &s.MaxSessions},
		{"header_budget_mib", 1, 16 << 10, &s.HeaderBudgetMiB},
		{"idle_timeout_s", 1, 3600, &s.IdleTimeoutSec},
		{"header_timeout_s", 1, 600, &s.HeaderTimeoutSec},
		{"policy_timeout_ms", 10, 60_000, &s.PolicyTimeoutMs},
		{"token_max_lifetime_min", 1, 60 * 24 * 366, &s.TokenMaxLifetimeMin},
	}
	for _, i := range ints {
		var n int64
		if t.integer(i.key, i.lo, i.hi, &n) {
			*i.dst = int(n)
		}
	}
	t.boolean("offline_collateral", &s.OfflineCollateral)
	t.boolean("snp_check_crl", &s.SNPCheckCRL)
	t.boolean("policy_allow_network", &s.PolicyAllowNetwork)
	t.str("collateral_dir", &s.CollateralDir)
	t.str("nvidia_rim_url", &s.NVIDIARIMURL)
	t.str("nvidia_ocsp_url", &s.NVIDIAOCSPURL)
	t.str("nvidia_service_key", &s.NVIDIAServiceKey)
	t.str("nvidia_device_roots", &s.NVIDIADeviceRoots)
	t.str("nvidia_rim_roots", &s.NVIDIARIMRoots)
}
