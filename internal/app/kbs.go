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

	settings, err := sigilSettings(cfg.Sigil, opts.Logger)
	if err != nil {
		return nil, err
	}
	verifiers, err := Verifiers(VerifierOptions{
		Config: builtin.VerifierConfig, Offline: settings.offlineCollateral, CollateralDir: settings.collateralDir,
		NVIDIA:     settings.nvidia,
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
	}, tokenverify.Options{HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("[attestation_token]: %w", err)
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
		MaxBodyBytes:     cfg.HTTPServer.PayloadLimit(),
		Now:              opts.Now,
		Logger:           opts.Logger,
		Metrics:          kbs.NewMetrics(opts.Version),
		JWKS:             broker.JWKS(),
		HeaderLimit:      settings.headerLimit,
		PolicyCacheTTL:   sharedStateTTL,
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
	var listeners []net.Listener
	for _, s := range h.Sockets {
		ln, err := net.Listen("tcp", s.String())
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listening on %s: %w", s, err)
		}
		if tc != nil {
			ln = tls.NewListener(ln, tc)
		}
		listeners = append(listeners, ln)
	}
	addrs := make([]net.Addr, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr()
	}
	srv := &http.Server{
		Handler:           k.Server.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Above the KBS's own budget, so that oversized headers get the
		// KBS's 431 problem JSON rather than net/http's plain text.
		MaxHeaderBytes: 2*k.Server.HeaderLimit() + 64<<10,
		ErrorLog:       slog.NewLogLogger(k.log.Handler(), slog.LevelDebug),
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go k.Server.RunSessionSweeper(sweepCtx, 60*time.Second)

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

// settings are the Sigil-only keys of the [sigil] table.
type settings struct {
	headerLimit       int    // header_limit_kib: request-header budget (default 512 KiB)
	offlineCollateral bool   // offline_collateral: missing TCB collateral → tcb_status Unknown
	collateralDir     string // collateral_dir: offline Intel/AMD/NVIDIA collateral directory
	nvidia            NVIDIAOptions
}

// sigilSettings reads the [sigil] table; unknown keys are warned about.
func sigilSettings(sg config.Sigil, log *slog.Logger) (settings, error) {
	var out settings
	for k, v := range sg.Extra {
		switch k {
		case "header_limit_kib":
			n, ok := v.(int64)
			if !ok || n < 16 || n > 16<<10 {
				return out, fmt.Errorf("sigil.header_limit_kib: must be an integer from 16 to 16384, got %v", v)
			}
			out.headerLimit = int(n) << 10
		case "offline_collateral":
			b, ok := v.(bool)
			if !ok {
				return out, fmt.Errorf("sigil.offline_collateral: must be a boolean, got %v", v)
			}
			out.offlineCollateral = b
		case "collateral_dir", "nvidia_rim_url", "nvidia_ocsp_url", "nvidia_device_roots", "nvidia_rim_roots", "nvidia_service_key":
			str, ok := v.(string)
			if !ok {
				return out, fmt.Errorf("sigil.%s: must be a string, got %v", k, v)
			}
			switch k {
			case "collateral_dir":
				out.collateralDir = str
			case "nvidia_rim_url":
				out.nvidia.RIMURL = str
			case "nvidia_ocsp_url":
				out.nvidia.OCSPURL = str
			case "nvidia_service_key":
				out.nvidia.ServiceKey = str
			case "nvidia_device_roots", "nvidia_rim_roots":
				certs, err := readCertChain(str)
				if err != nil {
					return out, fmt.Errorf("sigil.%s: %w", k, err)
				}
				if k == "nvidia_device_roots" {
					out.nvidia.DeviceRoots = certs
				} else {
					out.nvidia.RIMRoots = certs
				}
				log.Warn("NVIDIA roots replaced by configuration", "key", "sigil."+k, "file", str)
			}
		default:
			log.Warn("configuration", "key", "sigil."+k, "warning", "unknown key, ignored")
		}
	}
	return out, nil
}
