package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/kbs"
	"github.com/sigil-attestation/sigil/kbs/admin"
	"github.com/sigil-attestation/sigil/kbs/tokenverify"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/rvps"
	"github.com/sigil-attestation/sigil/storage"
)

// sharedStateTTL is how long compiled policies and reference values are
// trusted before re-reading storage. Writes through this process apply at
// once; writes by another replica sharing the storage within this window.
const sharedStateTTL = 2 * time.Second

// Options are the process-level inputs of NewKBS.
type Options struct {
	Logger     *slog.Logger
	Version    string
	HTTPClient *http.Client
	Now        func() time.Time
}

// KBS is an assembled all-in-one KBS: the HTTP server with the built-in
// Attestation Service and RVPS.
type KBS struct {
	Server *kbs.Server
	AS     *attestation.Service
	Broker *ear.Broker
	cfg    *config.KBS
	log    *slog.Logger
	stores *backends
	rv     *rvps.Service
}

// NewKBS builds the KBS described by cfg.
func NewKBS(ctx context.Context, cfg *config.KBS, opts Options) (*KBS, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	as := cfg.AttestationService
	if as.Type != config.ASBuiltin {
		return nil, fmt.Errorf("attestation_service.type %q is not available in this build of Sigil (only coco_as_builtin)", as.Type)
	}
	builtin := as.Builtin
	if builtin == nil {
		builtin = config.DefaultBuiltinAS()
	}
	if builtin.RVPS.Type != config.RVPSBuiltIn {
		return nil, fmt.Errorf("attestation_service.rvps_config.type %q is not available in this build of Sigil (only BuiltIn)", builtin.RVPS.Type)
	}

	h := &cfg.HTTPServer
	if h.TLSCiphers != "" || h.TLSGroups != "" {
		opts.Logger.Warn("http_server.tls_ciphers and tls_groups name OpenSSL suites and are not applied; Go's TLS stack chooses its own (TLS versions are honoured)")
	}
	if h.AuthRateLimitPerSecond != 0 || h.AuthRateLimitBurst != 0 {
		opts.Logger.Warn("http_server.auth_rate_limit_* is not implemented in this version of Sigil and is ignored")
	}
	stores := &backends{sb: &cfg.StorageBackend, open: map[config.StorageType]storage.Backend{}}
	k := &KBS{cfg: cfg, log: opts.Logger, stores: stores}
	ok := false
	defer func() {
		if !ok {
			stores.close()
		}
	}()
	ns := func(typ config.StorageType, name string) (storage.Store, error) {
		// Sessions live minutes: atomic writes suffice, durability is not
		// worth a disk sync per request.
		s, err := stores.namespace(ctx, typ, name, name == storage.NamespaceSession)
		if err != nil {
			return nil, fmt.Errorf("storage namespace %s: %w", name, err)
		}
		return s, nil
	}
	sessions, err := ns(cfg.SessionStorage(), storage.NamespaceSession)
	if err != nil {
		return nil, err
	}
	kbsPolicies, err := ns("", storage.NamespaceKBS)
	if err != nil {
		return nil, err
	}
	repo, err := ns("", storage.NamespaceRepository)
	if err != nil {
		return nil, err
	}
	asPolicies, err := ns(builtin.StorageType, storage.NamespaceASPolicy)
	if err != nil {
		return nil, err
	}
	rvStoreType := builtin.RVPS.StorageType
	if rvStoreType == "" {
		rvStoreType = builtin.StorageType
	}
	rvStore, err := ns(rvStoreType, storage.NamespaceReferenceValue)
	if err != nil {
		return nil, err
	}
	// Appraisals query reference values several times each; a short cache
	// keeps them off the storage path (local writes invalidate at once).
	rv := rvps.New(rvStore, rvps.Options{Now: opts.Now, CacheTTL: sharedStateTTL})
	k.rv = rv

	nv, err := nvidiaSettings(cfg.Sigil, opts.Logger)
	if err != nil {
		return nil, err
	}
	verifiers, err := Verifiers(VerifierOptions{
		Config: builtin.VerifierConfig, Offline: cfg.Sigil.OfflineCollateral, CollateralDir: cfg.Sigil.CollateralDir,
		NVIDIA: nv, SNPSkipCRL: !cfg.Sigil.SNPCheckCRL,
		HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	broker, err := newBroker(builtin.AttestationTokenBroker, opts)
	if err != nil {
		return nil, err
	}
	k.Broker = broker
	svc, err := attestation.New(ctx, attestation.Config{
		Verifiers:       verifiers,
		Policies:        asPolicies,
		ReferenceValues: rv,
		Broker:          broker,
		VerboseToken:    builtin.AttestationTokenBroker.VerboseToken,
		Logger:          opts.Logger,
		PolicyCacheTTL:  sharedStateTTL,
		PolicyOptions:   policyOptions(cfg.Sigil),
		Now:             opts.Now,
	})
	if err != nil {
		return nil, err
	}
	k.AS = svc

	adm, err := admin.New(ctx, adminConfig(cfg.Admin), admin.Options{HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("[admin]: %w", err)
	}
	if cfg.Admin.AuthorizationMode == config.InsecureAllowAll {
		opts.Logger.Warn("admin API is open to anyone: [admin] authorization_mode = InsecureAllowAll")
	}
	tv, err := tokenverify.New(ctx, tokenverify.Config{
		TrustedJWKSets:    cfg.AttestationToken.TrustedJWKSets,
		TrustedCertsPaths: cfg.AttestationToken.TrustedCertsPaths,
		ExtraTeeKeyPaths:  cfg.AttestationToken.ExtraTEEKeyPaths,
		InsecureHeaderJWK: cfg.AttestationToken.InsecureHeaderJWK,
		// Tokens of the built-in AS live duration_min; a token claiming a
		// longer life (or none) is refused.
		MaxTokenLifetime: tokenLifetime(cfg),
	}, tokenverify.Options{HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("[attestation_token]: %w", err)
	}
	if cfg.Sigil.PolicyAllowNetwork {
		opts.Logger.Warn("policies may call http.send and net.lookup_ip_addr: [sigil] policy_allow_network = true")
	}
	if cfg.AttestationToken.InsecureHeaderJWK {
		opts.Logger.Warn("attestation tokens are trusted by their header key: [attestation_token] insecure_header_jwk = true")
	}

	plugins := map[string]kbs.Plugin{}
	for _, p := range cfg.Plugins {
		switch {
		case p.Resource != nil && p.Supported():
			plugins[config.PluginResource] = &kbs.ResourcePlugin{Store: repo}
		case p.Sample != nil:
			plugins[config.PluginSample] = &kbs.SamplePlugin{Item: p.Sample.Item}
		default:
			opts.Logger.Warn("plugin not available in this build of Sigil; its endpoints answer 404", "plugin", p.Name)
		}
	}

	srv, err := kbs.New(ctx, kbs.Config{
		AS: svc, RVPS: rv, Admin: adm, Tokens: tv,
		ExtraTeeKeyPaths: cfg.AttestationToken.ExtraTEEKeyPaths,
		Sessions:         sessions,
		Policies:         kbsPolicies,
		Plugins:          plugins,
		SessionTimeout:   as.SessionTimeout(),
		MaxSessions:      cfg.Sigil.MaxSessions,
		Ready:            k.stores.ready,
		MaxBodyBytes:     cfg.HTTPServer.PayloadLimit(),
		Now:              opts.Now,
		Logger:           opts.Logger,
		Metrics:          kbs.NewMetrics(opts.Version),
		JWKS:             broker.JWKS(),
		HeaderLimit:      cfg.Sigil.HeaderLimitKiB << 10,
		PolicyCacheTTL:   sharedStateTTL,
		PolicyOptions:    policyOptions(cfg.Sigil),
	})
	if err != nil {
		return nil, err
	}
	k.Server = srv
	ok = true
	return k, nil
}

func adminConfig(c config.Admin) admin.Config {
	out := admin.Config{Mode: admin.Mode(c.AuthorizationMode)}
	if c.BearerJWT != nil {
		for _, p := range c.BearerJWT.IdentityProviders {
			out.Providers = append(out.Providers, admin.IdentityProvider{
				Issuer: p.Issuer, Audience: p.Audience, PublicKeyURI: p.PublicKeyURI, JWKSetURI: p.JWKSetURI,
			})
		}
	}
	if c.RegexACL != nil {
		for _, a := range c.RegexACL.ACLs {
			out.ACL = append(out.ACL, admin.ACLEntry{Role: a.Role, AllowedEndpoints: a.AllowedEndpoints})
		}
	}
	return out
}

func newBroker(c config.TokenBroker, opts Options) (*ear.Broker, error) {
	bc := ear.BrokerConfig{
		Issuer: c.IssuerName, Developer: c.DeveloperName, Build: c.BuildName, Profile: c.ProfileName,
		Duration: time.Duration(c.DurationMin) * time.Minute, Now: opts.Now,
	}
	if bc.Build == "" {
		bc.Build = "sigil " + opts.Version
	}
	if c.Signer == nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		bc.Signer = key
		opts.Logger.Info("EAR tokens are signed with an ephemeral key (no attestation_token_broker.signer)")
	} else {
		pemKey, err := os.ReadFile(c.Signer.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("attestation_token_broker.signer.key_path: %w", err)
		}
		signer, err := ear.LoadSigner(pemKey)
		if err != nil {
			return nil, fmt.Errorf("attestation_token_broker.signer.key_path: %w", err)
		}
		bc.Signer = signer
		bc.CertURL = c.Signer.CertURL
		if c.Signer.CertPath != "" {
			chain, err := readCertChain(c.Signer.CertPath)
			if err != nil {
				return nil, fmt.Errorf("attestation_token_broker.signer.cert_path: %w", err)
			}
			bc.CertChain = chain
		}
	}
	return ear.NewBroker(bc)
}

func readCertChain(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate found")
	}
	return out, nil
}

// Close releases the storage backends.
func (k *KBS) Close() { k.stores.close() }

// TLSConfig builds the server TLS configuration from [http_server].
func TLSConfig(h *config.HTTPServer) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(h.Certificate, h.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("http_server certificate/private_key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	lo, hi := h.TLSVersions()
	if v, ok := tlsVersion(lo); ok {
		tc.MinVersion = v
	}
	if v, ok := tlsVersion(hi); ok {
		tc.MaxVersion = v
	}
	return tc, nil
}

func tlsVersion(v config.TLSVersion) (uint16, bool) {
	switch strings.TrimSpace(string(v)) {
	case "1.2":
		return tls.VersionTLS12, true
	case "1.3":
		return tls.VersionTLS13, true
	}
	return 0, false
}

// Serve listens on every configured socket until ctx ends, then shuts down
// gracefully. ready, if non-nil, receives the bound addresses.
func (k *KBS) Serve(ctx context.Context, ready func(addrs []net.Addr)) error {
	h := &k.cfg.HTTPServer
	var tc *tls.Config
	if !h.InsecureHTTP {
		var err error
		if tc, err = TLSConfig(h); err != nil {
			return err
		}
	}
	srv, guard := k.Server.HTTPServer(kbs.ConnLimits{
		MaxConns:     k.cfg.Sigil.MaxConnections,
		HeaderBudget: int64(k.cfg.Sigil.HeaderBudgetMiB) << 20,
		IdleTimeout:  time.Duration(k.cfg.Sigil.IdleTimeoutSec) * time.Second,
		// Slow-header clients are dropped after this.
		ReadHeaderTimeout: time.Duration(k.cfg.Sigil.HeaderTimeoutSec) * time.Second,
	})
	srv.ErrorLog = slog.NewLogLogger(k.log.Handler(), slog.LevelDebug)
	var listeners []net.Listener
	for _, s := range h.Sockets {
		ln, err := net.Listen("tcp", s.String())
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listening on %s: %w", s, err)
		}
		// The guard sits under TLS: it counts connections and the bytes of
		// headers not yet received, whatever the transport.
		ln = guard(ln, tc != nil)
		if tc != nil {
			ln = tls.NewListener(ln, tc)
		}
		listeners = append(listeners, ln)
	}
	addrs := make([]net.Addr, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr()
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go k.Server.RunSessionSweeper(sweepCtx, 10*time.Second)
	k.stores.watch(sweepCtx, k.invalidate)

	errc := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if ready != nil {
		ready(addrs)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	wg.Wait()
	return err
}

// invalidate drops what this process cached of a key another replica
// changed (key "" means anything in the namespace may have changed).
func (k *KBS) invalidate(namespace, key string) {
	switch namespace {
	case storage.NamespaceKBS:
		k.Server.InvalidateResourcePolicy()
	case storage.NamespaceASPolicy:
		k.AS.InvalidatePolicy(strings.TrimSuffix(key, ".rego"))
	case storage.NamespaceReferenceValue:
		k.rv.Invalidate(key)
	}
}

// policyOptions bounds policy evaluation as [sigil] says.
func policyOptions(sg config.Sigil) policy.Options {
	return policy.Options{
		Limits:       policy.Limits{Timeout: time.Duration(sg.PolicyTimeoutMs) * time.Millisecond},
		AllowNetwork: sg.PolicyAllowNetwork,
	}
}

// tokenLifetime is the longest attestation-token validity the KBS accepts.
func tokenLifetime(cfg *config.KBS) time.Duration {
	if n := cfg.Sigil.TokenMaxLifetimeMin; n > 0 {
		return time.Duration(n) * time.Minute
	}
	if b := cfg.AttestationService.Builtin; b != nil && b.AttestationTokenBroker.DurationMin > 0 {
		return time.Duration(b.AttestationTokenBroker.DurationMin) * time.Minute
	}
	return tokenverify.DefaultMaxTokenLifetime
}

// nvidiaSettings turns the [sigil] NVIDIA keys into verifier options.
func nvidiaSettings(sg config.Sigil, log *slog.Logger) (NVIDIAOptions, error) {
	o := NVIDIAOptions{RIMURL: sg.NVIDIARIMURL, OCSPURL: sg.NVIDIAOCSPURL, ServiceKey: sg.NVIDIAServiceKey}
	for _, r := range []struct {
		key, file string
		dst       *[]*x509.Certificate
	}{
		{"nvidia_device_roots", sg.NVIDIADeviceRoots, &o.DeviceRoots},
		{"nvidia_rim_roots", sg.NVIDIARIMRoots, &o.RIMRoots},
	} {
		if r.file == "" {
			continue
		}
		certs, err := readCertChain(r.file)
		if err != nil {
			return o, fmt.Errorf("sigil.%s: %w", r.key, err)
		}
		*r.dst = certs
		log.Warn("NVIDIA roots replaced by configuration", "key", "sigil."+r.key, "file", r.file)
	}
	return o, nil
}
