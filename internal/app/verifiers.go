// Package app wires Sigil's packages into the running product: the
// compiled-in verifiers, the storage backend chosen by config, and the KBS
// with its built-in Attestation Service and RVPS.
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/protocol"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/azvtpm"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nras"
	"github.com/sigil-attestation/sigil/verifier/nvidia/ocsp"
	"github.com/sigil-attestation/sigil/verifier/nvidia/rim"
	"github.com/sigil-attestation/sigil/verifier/sample"
	"github.com/sigil-attestation/sigil/verifier/sampledevice"
	"github.com/sigil-attestation/sigil/verifier/snp"
	"github.com/sigil-attestation/sigil/verifier/snp/kds"
	"github.com/sigil-attestation/sigil/verifier/tdx"
	"github.com/sigil-attestation/sigil/verifier/tdx/pcs"
	"github.com/sigil-attestation/sigil/verifier/tpm"
)

// VerifierOptions configure the compiled-in verifiers.
type VerifierOptions struct {
	// Config is Trustee's verifier_config; nil means every default.
	Config *config.VerifierConfig
	// CollateralDir is an offline collateral directory: Intel collateral in
	// the pcs package's layout and AMD VCEKs in the kds offline-store
	// layout. It is consulted before (TDX: after) the network services.
	CollateralDir string
	// NoNetwork keeps the verifiers off vendor services entirely (only
	// CollateralDir and the evidence itself are used).
	NoNetwork bool
	// Offline reports missing TCB collateral as tcb_status "Unknown" with
	// the reason instead of failing verification (signatures, chains and
	// bindings are still fully checked). Off by default, as in Trustee.
	Offline    bool
	HTTPClient *http.Client
	// Now is the clock of certificate and collateral checks (default now).
	Now func() time.Time
	// CertNow, if set, is the clock for the certificates that sign vendor
	// collateral (Intel's TCB signing chain), when replaying old evidence
	// whose collateral outlived its signing certificate.
	CertNow func() time.Time
	// SNPSkipCRL turns off the SEV-SNP check of the ARK-issued CRL (revoked
	// ASK/ASVK). The check is on by default; its CRLs come from the same
	// KDS clients and offline stores as the VCEKs (KDS first, then
	// {CollateralDir}/crl/{product}.crl and the configured OfflineStore
	// paths). A CRL that cannot be had does not fail verification; the
	// snp claim crl_status ("checked", "unavailable", "skipped") says what
	// happened.
	SNPSkipCRL bool
	// NVIDIA holds the Sigil-only NVIDIA settings ([sigil] nvidia_*).
	NVIDIA NVIDIAOptions
	// StrictDevices makes verification fail when any device's evidence is
	// not genuine (sigil evaluate); the KBS instead records it in the
	// device's submodule so the resource policy decides.
	StrictDevices bool
	Logger        *slog.Logger
}

// NVIDIAOptions are Sigil's NVIDIA settings beyond Trustee's
// verifier_config.nvidia_verifier.
type NVIDIAOptions struct {
	RIMURL, OCSPURL string // vendor services (defaults: NVIDIA's)
	// ServiceKey is NVIDIA's attestation service key, sent as a Bearer
	// token to NRAS, the RIM service and OCSP when set. Never logged.
	ServiceKey string
	// DeviceRoots / RIMRoots replace the pinned NVIDIA roots (emulated
	// devices, test hierarchies). Empty means NVIDIA's.
	DeviceRoots, RIMRoots []*x509.Certificate
}

// Verifiers returns the compiled-in verifiers by tee name.
func Verifiers(opts VerifierOptions) (map[string]verifier.Verifier, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	vc := opts.Config
	if vc == nil {
		vc = &config.VerifierConfig{}
	}
	out := map[string]verifier.Verifier{
		protocol.TeeSample:       sample.New(),
		protocol.TeeSampleDevice: sampledevice.New(),
	}

	// Intel TDX: quote verification plus TCB evaluation from PCS/PCCS.
	pcsOpts := pcs.Options{OfflineDir: opts.CollateralDir, HTTPClient: opts.HTTPClient, Now: opts.Now, CertNow: opts.CertNow, Logger: opts.Logger}
	if !opts.NoNetwork {
		pcsOpts.BaseURL = pcs.DefaultBaseURL
	}
	if d := vc.DCAP; d != nil {
		if d.CollateralService != "" && !opts.NoNetwork {
			pcsOpts.BaseURL = d.CollateralService
		}
		pcsOpts.TCBUpdateType = d.TCBUpdateType
	}
	var tcb pcs.Evaluator
	if pcsOpts.BaseURL != "" || pcsOpts.OfflineDir != "" {
		c, err := pcs.New(pcsOpts)
		if err != nil {
			return nil, fmt.Errorf("verifier_config.dcap_verifier: %w", err)
		}
		tcb = c
	}
	tdxV, err := tdx.New(tdx.Options{Now: opts.Now, TCB: tcb, Offline: opts.Offline, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("tdx verifier: %w", err)
	}
	out[protocol.TeeTdx] = tdxV

	// AMD SEV-SNP: VCEK from the evidence, KDS or an offline store; the
	// ARK's CRL from the same KDS clients, then the same offline stores.
	var sources []kds.Source
	var kdsCRLs, offlineCRLs kds.CRLSources
	if opts.CollateralDir != "" {
		store := kds.NewOfflineStore(opts.CollateralDir)
		sources = append(sources, store)
		offlineCRLs = append(offlineCRLs, store)
	}
	vcekSources := []config.VCEKSource{{Type: "KDS", BaseURL: kds.DefaultBaseURL}}
	if vc.SNP != nil && len(vc.SNP.VCEKSources) > 0 {
		vcekSources = vc.SNP.VCEKSources
	}
	for i, s := range vcekSources {
		switch s.Type {
		case "KDS":
			if opts.NoNetwork {
				continue
			}
			c, err := kds.New(kds.Options{BaseURL: s.BaseURL, HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger})
			if err != nil {
				return nil, fmt.Errorf("verifier_config.snp_verifier.vcek_sources[%d]: %w", i, err)
			}
			sources = append(sources, c)
			kdsCRLs = append(kdsCRLs, c)
		case "OfflineStore":
			store := kds.NewOfflineStore(s.Path)
			sources = append(sources, store)
			offlineCRLs = append(offlineCRLs, store)
		default:
			return nil, fmt.Errorf("verifier_config.snp_verifier.vcek_sources[%d]: unknown type %q (KDS or OfflineStore)", i, s.Type)
		}
	}
	snpOpts := snp.Options{Now: opts.Now, VCEKSources: sources, Logger: opts.Logger}
	if !opts.SNPSkipCRL {
		// With no source at all the CRL is "unavailable" (visible in the
		// claims), not silently skipped.
		snpOpts.CRL = append(kdsCRLs, offlineCRLs...)
	}
	snpV, err := snp.New(snpOpts)
	if err != nil {
		return nil, fmt.Errorf("snp verifier: %w", err)
	}
	out[protocol.TeeSnp] = snpV

	// Azure confidential VMs: vTPM quote + HCL report + hardware report.
	azSNP, err := azvtpm.NewSNP(azvtpm.SNPOptions{SNP: azvtpm.SNPFromVerifier(snpV), Now: opts.Now, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("az-snp-vtpm verifier: %w", err)
	}
	out[protocol.TeeAzSnpVtpm] = azSNP
	azTDX, err := azvtpm.NewTDX(azvtpm.TDXOptions{TDX: azvtpm.TDXFromVerifier(tdxV), Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("az-tdx-vtpm verifier: %w", err)
	}
	out[protocol.TeeAzTdxVtpm] = azTDX

	// Generic TPM: AKs trusted from a directory.
	tpmOpts := tpm.Options{TrustedAKDir: tpm.DefaultTrustedAKDir, Logger: opts.Logger}
	if t := vc.TPM; t != nil {
		if t.TrustedAKKeysDir != "" {
			tpmOpts.TrustedAKDir = t.TrustedAKKeysDir
		}
		tpmOpts.MaxTrustedAKs = int(t.MaxTrustedAKKeys)
	}
	if _, statErr := os.Stat(tpmOpts.TrustedAKDir); statErr != nil {
		// No trusted AKs: every tpm attestation fails, with this reason.
		opts.Logger.Info("tpm verifier has no trusted AK directory; tpm evidence will be rejected", "dir", tpmOpts.TrustedAKDir)
		out[protocol.TeeTpm] = unavailable{fmt.Errorf("tpm verifier: trusted AK directory %s: %w", tpmOpts.TrustedAKDir, statErr)}
	} else {
		tpmV, err := tpm.New(tpmOpts)
		if err != nil {
			return nil, fmt.Errorf("verifier_config.tpm_verifier: %w", err)
		}
		out[protocol.TeeTpm] = tpmV
	}
	nv, err := nvidiaVerifier(vc.NVIDIA, opts)
	if err != nil {
		return nil, err
	}
	out[protocol.TeeNvidia] = nv
	return out, nil
}

// nvidiaVerifier builds the NVIDIA GPU/NVSwitch verifier. Local mode
// verifies SPDM evidence, the device chain and FWID, appraises measurements
// against NVIDIA's RIMs and checks revocation over OCSP.
func nvidiaVerifier(c *config.NVIDIAVerifier, opts VerifierOptions) (verifier.Verifier, error) {
	if c != nil && c.Type == "Remote" {
		return nrasVerifier(c.VerifierURL, opts)
	}
	if c != nil && c.Type != "" && c.Type != "Local" {
		return nil, fmt.Errorf("verifier_config.nvidia_verifier.type %q: want Local or Remote", c.Type)
	}
	var fetcher nvidia.RIMFetcher = noRIMSource{}
	if !opts.NoNetwork || opts.CollateralDir != "" {
		c, err := rim.NewClient(rim.ClientOptions{
			BaseURL: opts.NVIDIA.RIMURL, ServiceKey: opts.NVIDIA.ServiceKey, HTTPClient: opts.HTTPClient, OfflineDir: opts.CollateralDir,
			DisableService: opts.NoNetwork, Now: opts.Now, Logger: opts.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("nvidia RIM service: %w", err)
		}
		fetcher = c
	}
	rimVerifier, err := rim.NewVerifier(rim.VerifierOptions{Roots: opts.NVIDIA.RIMRoots})
	if err != nil {
		return nil, fmt.Errorf("nvidia RIM roots: %w", err)
	}
	var rimRevocation, deviceRevocation nvidia.RevocationChecker
	if !opts.NoNetwork {
		checker, err := ocsp.New(ocsp.Options{
			ResponderURL: opts.NVIDIA.OCSPURL, ServiceKey: opts.NVIDIA.ServiceKey, HTTPClient: opts.HTTPClient, Now: opts.Now,
			Lenient: opts.Offline, Logger: opts.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("nvidia OCSP: %w", err)
		}
		rimRevocation = ocspChecker{c: checker}
		// NVIDIA's responder does not serve the per-boot device leaf: the
		// device chain is checked from its issuer up (nvidia.md §1.7).
		deviceRevocation = ocspChecker{c: checker, skipLeaf: true}
	}
	appraiser, err := nvidia.NewRIMAppraiser(nvidia.RIMAppraiserOptions{
		Fetcher: fetcher, Verifier: rimVerifier, Revocation: rimRevocation, Now: opts.Now, Offline: opts.Offline,
	})
	if err != nil {
		return nil, err
	}
	return nvidia.New(nvidia.Options{
		Now: opts.Now, Roots: opts.NVIDIA.DeviceRoots, Appraiser: appraiser, Revocation: deviceRevocation,
		FailOnInvalidDevice: opts.StrictDevices, Logger: opts.Logger,
	})
}

// nrasVerifier is the Remote mode: NVIDIA's NRAS verifies the evidence and
// Sigil verifies NRAS's signed answer (JWKS by kid, submodule digests,
// nonce, issuer, expiry).
func nrasVerifier(verifierURL string, opts VerifierOptions) (verifier.Verifier, error) {
	o := nras.Options{HTTPClient: opts.HTTPClient, Now: opts.Now, ServiceKey: opts.NVIDIA.ServiceKey, Logger: opts.Logger}
	if verifierURL != "" {
		// Trustee's verifier_url is the attest endpoint; the JWKS and the
		// expected issuer hang off the service's base URL.
		o.AttestURL = strings.TrimRight(verifierURL, "/")
		for _, suffix := range []string{"/v4/attest", "/v3/attest"} {
			if base, ok := strings.CutSuffix(o.AttestURL, suffix); ok {
				o.BaseURL = base
			}
		}
	}
	c, err := nras.New(o)
	if err != nil {
		return nil, fmt.Errorf("verifier_config.nvidia_verifier: %w", err)
	}
	return nras.NewVerifier(c, opts.StrictDevices), nil
}

// noRIMSource is the RIM fetcher when neither the network nor an offline
// directory may be used.
type noRIMSource struct{}

func (noRIMSource) Fetch(_ context.Context, id string) (*rim.Document, error) {
	return nil, fmt.Errorf("%w: RIM %s: no RIM source (no network, no collateral directory)", rim.ErrService, id)
}

// ocspChecker adapts the OCSP client to the NVIDIA verifier: an
// unreachable responder (strict mode) becomes ErrServiceUnavailable, and
// device chains are checked without their leaf.
type ocspChecker struct {
	c        *ocsp.Checker
	skipLeaf bool
}

func (o ocspChecker) CheckChain(ctx context.Context, chain []*x509.Certificate) (string, string, error) {
	if o.skipLeaf && len(chain) >= 2 {
		chain = chain[1:]
	}
	status, detail, err := o.c.CheckChain(ctx, chain)
	if errors.Is(err, ocsp.ErrUnreachable) {
		err = fmt.Errorf("%w: %w", nvidia.ErrServiceUnavailable, err)
	}
	return status, detail, err
}

// unavailable is a verifier that could not be configured; it rejects all
// evidence with the configuration error, so the cause reaches the log.
type unavailable struct{ err error }

func (u unavailable) Verify(context.Context, []byte, verifier.Expected) ([]verifier.Result, error) {
	return nil, u.err
}
