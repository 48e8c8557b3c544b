package pcs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// maxBody bounds every collateral response.
const maxBody = 4 << 20

// tcbDoc and qeDoc are verified collateral documents as cached.
type tcbDoc struct {
	s     *SignedTCBInfo
	chain []*x509.Certificate
}

type qeDoc struct {
	s     *SignedEnclaveIdentity
	chain []*x509.Certificate
}

type crlDoc struct {
	crl *x509.RevocationList
	// verified memoises issuers (DER) whose signature check passed, so a
	// cached CRL is checked once per issuer.
	mu       sync.Mutex
	verified map[string]bool
}

// raw is one fetched item before verification.
type raw struct {
	body, chain []byte
}

func (c *Client) getTCBInfo(ctx context.Context, fmspc []byte, now time.Time) (lookupResult, error) {
	fm := strings.ToUpper(hex.EncodeToString(fmspc))
	key := "tcb|" + fm + "|" + c.update
	return c.cache.get(ctx, key, now, c.timeout, c.retry, func(ctx context.Context) (*cacheEntry, error) {
		return c.fetchVerified(ctx, func(ctx context.Context, src source) (*cacheEntry, error) {
			r, err := src.tcbInfo(ctx, fm)
			if err != nil {
				return nil, err
			}
			s, err := ParseTCBInfo(r.body)
			if err != nil {
				return nil, err
			}
			chain, err := c.verifySigned(r.chain, s.Raw, s.Signature)
			if err != nil {
				return nil, fmt.Errorf("tcbInfo: %w", err)
			}
			return &cacheEntry{val: &tcbDoc{s: s, chain: chain}, expires: c.expiry(now, s.TCBInfo.NextUpdate)}, nil
		})
	})
}

func (c *Client) getQEIdentity(ctx context.Context, now time.Time) (lookupResult, error) {
	key := "qe|" + c.update
	return c.cache.get(ctx, key, now, c.timeout, c.retry, func(ctx context.Context) (*cacheEntry, error) {
		return c.fetchVerified(ctx, func(ctx context.Context, src source) (*cacheEntry, error) {
			r, err := src.qeIdentity(ctx)
			if err != nil {
				return nil, err
			}
			s, err := ParseEnclaveIdentity(r.body)
			if err != nil {
				return nil, err
			}
			chain, err := c.verifySigned(r.chain, s.Raw, s.Signature)
			if err != nil {
				return nil, fmt.Errorf("enclaveIdentity: %w", err)
			}
			return &cacheEntry{val: &qeDoc{s: s, chain: chain}, expires: c.expiry(now, s.Identity.NextUpdate)}, nil
		})
	})
}

// fetchVerified tries the online service, then the offline store.
func (c *Client) fetchVerified(ctx context.Context, get func(context.Context, source) (*cacheEntry, error)) (*cacheEntry, error) {
	var errs []error
	for _, src := range c.sources() {
		e, err := get(ctx, src)
		if err == nil {
			return e, nil
		}
		c.log.WarnContext(ctx, "pcs: collateral fetch failed", "source", src.name(), "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", src.name(), err))
	}
	return nil, errors.Join(errs...)
}

func (c *Client) sources() []source {
	var s []source
	if c.base != nil {
		s = append(s, &httpSource{c: c})
	}
	if c.offline != "" {
		s = append(s, &offlineSource{path: c.offline, update: c.update})
	}
	return s
}

// expiry is when a document fetched at now must be refetched.
func (c *Client) expiry(now, nextUpdate time.Time) time.Time {
	exp := nextUpdate
	if c.maxAge > 0 && now.Add(c.maxAge).Before(exp) {
		exp = now.Add(c.maxAge)
	}
	// Already expired collateral (the best the source has): do not refetch
	// on every call.
	if floor := now.Add(c.retry); exp.Before(floor) {
		exp = floor
	}
	return exp
}

// verifySigned verifies the issuer chain at the certificate clock and the
// signature over signed; it returns the parsed chain.
func (c *Client) verifySigned(chainPEM, signed, sig []byte) ([]*x509.Certificate, error) {
	if len(chainPEM) == 0 {
		return nil, fmt.Errorf("%w: issuer chain missing", ErrSigningChain)
	}
	chain, err := parseChain(chainPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := verifyChain(chain, c.roots, c.certNow())
	if err != nil {
		return nil, err
	}
	if leaf.IsCA {
		// Collateral is signed by Intel's end-entity "TCB Signing" key,
		// never by a CA (e.g. a PCK CA under the same root).
		return nil, fmt.Errorf("%w: signer %q is a CA certificate", ErrSigningChain, leaf.Subject.CommonName)
	}
	if err := VerifySignature(leaf, signed, sig); err != nil {
		return nil, err
	}
	return chain, nil
}

// checkCRLs checks the PCK leaf against its CA's CRL and the CA against the
// Root CA CRL. It fills the CRL numbers and returns expiry reasons.
func (c *Client) checkCRLs(ctx context.Context, chain []*x509.Certificate, now time.Time, res *TCBResult, d *dateSpan) ([]string, error) {
	leaf, ca := chain[0], chain[1]
	var caType string
	switch {
	case strings.Contains(ca.Subject.CommonName, "Platform"):
		caType = "platform"
	case strings.Contains(ca.Subject.CommonName, "Processor"):
		caType = "processor"
	default:
		return nil, fmt.Errorf("%w: unknown PCK CA %q", ErrInvalidPlatform, ca.Subject.CommonName)
	}
	rootURL := defaultRootCRLURL
	if len(ca.CRLDistributionPoints) > 0 {
		rootURL = ca.CRLDistributionPoints[0]
	}
	var reasons []string
	check := func(key string, fetch func(context.Context, source) (raw, error), issuer, subject *x509.Certificate, name string) (int, error) {
		l, err := c.cache.get(ctx, key, now, c.timeout, c.retry, func(ctx context.Context) (*cacheEntry, error) {
			return c.fetchVerified(ctx, func(ctx context.Context, src source) (*cacheEntry, error) {
				r, err := fetch(ctx, src)
				if err != nil {
					return nil, err
				}
				crl, err := parseCRL(r.body)
				if err != nil {
					return nil, err
				}
				return &cacheEntry{val: &crlDoc{crl: crl}, expires: c.expiry(now, crl.NextUpdate)}, nil
			})
		})
		if err != nil {
			return 0, err
		}
		doc := l.ent.val.(*crlDoc)
		crl := doc.crl
		if err := doc.checkSignature(issuer); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(subject.SerialNumber) == 0 {
				return 0, fmt.Errorf("%w: %s serial %x is on the %s", ErrRevoked, subject.Subject.CommonName, subject.SerialNumber, name)
			}
		}
		if r := windowReason(name, crl.ThisUpdate, crl.NextUpdate, now); r != "" {
			res.CollateralExpired = true
			reasons = append(reasons, r)
		}
		if l.stale {
			res.Stale, res.CollateralExpired = true, true
			reasons = append(reasons, fmt.Sprintf("serving cached %s after failed refresh: %v", name, l.fetchErr))
		}
		d.add(crl.ThisUpdate, crl.NextUpdate)
		if crl.Number == nil || !crl.Number.IsInt64() {
			return 0, nil
		}
		return int(crl.Number.Int64()), nil
	}
	n, err := check("pckcrl|"+caType, func(ctx context.Context, s source) (raw, error) { return s.pckCRL(ctx, caType) },
		ca, leaf, "PCK CRL")
	if err != nil {
		return nil, err
	}
	res.PCKCRLNum = n
	n, err = check("rootcrl", func(ctx context.Context, s source) (raw, error) { return s.rootCRL(ctx, rootURL) },
		c.root, ca, "Root CA CRL")
	if err != nil {
		return nil, err
	}
	res.RootCACRLNum = n
	res.CRLChecked = true
	return reasons, nil
}

func (d *crlDoc) checkSignature(issuer *x509.Certificate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.verified[string(issuer.Raw)] {
		return nil
	}
	if err := d.crl.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("%w: CRL not signed by %s: %v", ErrSignature, issuer.Subject.CommonName, err)
	}
	if d.verified == nil {
		d.verified = map[string]bool{}
	}
	d.verified[string(issuer.Raw)] = true
	return nil
}

// parseCRL accepts DER, PEM or hex-encoded DER (PCCS returns hex).
func parseCRL(b []byte) (*x509.RevocationList, error) {
	t := bytes.TrimSpace(b)
	if blk, _ := pem.Decode(t); blk != nil {
		t = blk.Bytes
	} else if len(t) > 0 && t[0] != 0x30 {
		d, err := hex.DecodeString(string(t))
		if err != nil {
			return nil, fmt.Errorf("%w: CRL encoding", ErrInvalidCollateral)
		}
		t = d
	}
	crl, err := x509.ParseRevocationList(t)
	if err != nil {
		return nil, fmt.Errorf("%w: CRL: %v", ErrInvalidCollateral, err)
	}
	return crl, nil
}

// source is one place collateral comes from.
type source interface {
	name() string
	tcbInfo(ctx context.Context, fmspcUpper string) (raw, error)
	qeIdentity(ctx context.Context) (raw, error)
	pckCRL(ctx context.Context, ca string) (raw, error)
	rootCRL(ctx context.Context, cdp string) (raw, error)
}

// httpSource talks to Intel PCS or a PCCS (same v4 paths).
type httpSource struct{ c *Client }

func (h *httpSource) name() string { return h.c.base.String() }

func (h *httpSource) endpoint(path string, q url.Values) string {
	u := *h.c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = q.Encode()
	return u.String()
}

func (h *httpSource) tcbInfo(ctx context.Context, fm string) (raw, error) {
	return h.get(ctx, h.endpoint("/tdx/certification/v4/tcb", url.Values{"fmspc": {fm}, "update": {h.c.update}}),
		"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")
}

func (h *httpSource) qeIdentity(ctx context.Context) (raw, error) {
	return h.get(ctx, h.endpoint("/tdx/certification/v4/qe/identity", url.Values{"update": {h.c.update}}),
		"SGX-Enclave-Identity-Issuer-Chain")
}

func (h *httpSource) pckCRL(ctx context.Context, ca string) (raw, error) {
	return h.get(ctx, h.endpoint("/sgx/certification/v4/pckcrl", url.Values{"ca": {ca}, "encoding": {"der"}}))
}

func (h *httpSource) rootCRL(ctx context.Context, cdp string) (raw, error) {
	if h.c.isPCS {
		// Intel PCS does not serve the root CRL; it is published at the
		// certificate's CRL distribution point.
		return h.get(ctx, cdp)
	}
	return h.get(ctx, h.endpoint("/sgx/certification/v4/rootcacrl", nil))
}

func (h *httpSource) get(ctx context.Context, u string, chainHeaders ...string) (raw, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return raw{}, fmt.Errorf("%w: %v", ErrCollateralUnavailable, err)
	}
	resp, err := h.c.hc.Do(req)
	if err != nil {
		return raw{}, fmt.Errorf("%w: %v", ErrCollateralUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return raw{}, fmt.Errorf("%w: GET %s: HTTP %d", ErrCollateralUnavailable, u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return raw{}, fmt.Errorf("%w: reading %s: %v", ErrCollateralUnavailable, u, err)
	}
	if len(body) > maxBody {
		return raw{}, fmt.Errorf("%w: response from %s too large", ErrInvalidCollateral, u)
	}
	r := raw{body: body}
	for _, hd := range chainHeaders {
		if v := resp.Header.Get(hd); v != "" {
			dec, err := decodeChainHeader(v)
			if err != nil {
				return raw{}, fmt.Errorf("%w: %s header: %v", ErrSigningChain, hd, err)
			}
			r.chain = []byte(dec)
			break
		}
	}
	return r, nil
}

// offlineSource reads an air-gapped store: a directory (layout in doc.go) or
// a PCS client tool JSON file.
type offlineSource struct{ path, update string }

func (o *offlineSource) name() string { return "file://" + o.path }

func (o *offlineSource) isFile() (bool, error) {
	st, err := os.Stat(o.path)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrCollateralUnavailable, err)
	}
	return !st.IsDir(), nil
}

// readFirst returns the first existing file among names in the directory.
func (o *offlineSource) readFirst(names ...string) (string, []byte, error) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(o.path, n))
		if err == nil {
			return n, b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("%w: %v", ErrCollateralUnavailable, err)
		}
	}
	return "", nil, fmt.Errorf("%w: none of %v in %s", ErrCollateralUnavailable, names, o.path)
}

// docWithChain reads a JSON document and its issuer chain: NAME.json is
// paired with NAME.issuer-chain.pem, else tcb-signing-chain.pem.
func (o *offlineSource) docWithChain(names ...string) (raw, error) {
	n, body, err := o.readFirst(names...)
	if err != nil {
		return raw{}, err
	}
	_, chain, err := o.readFirst(strings.TrimSuffix(n, ".json")+".issuer-chain.pem", "tcb-signing-chain.pem")
	if err != nil {
		return raw{}, err
	}
	return raw{body: body, chain: chain}, nil
}

func (o *offlineSource) tcbInfo(_ context.Context, fm string) (raw, error) {
	if f, err := o.isFile(); err != nil {
		return raw{}, err
	} else if f {
		return o.fromTool(func(t *toolCollaterals) (raw, error) { return t.tcbInfo(fm, o.update) })
	}
	var names []string
	for _, f := range []string{fm, strings.ToLower(fm)} {
		if o.update == "early" {
			names = append(names, "tcbinfo-"+f+"-early.json")
		}
		names = append(names, "tcbinfo-"+f+".json")
	}
	return o.docWithChain(names...)
}

func (o *offlineSource) qeIdentity(context.Context) (raw, error) {
	if f, err := o.isFile(); err != nil {
		return raw{}, err
	} else if f {
		return o.fromTool(func(t *toolCollaterals) (raw, error) { return t.qeIdentity(o.update) })
	}
	var names []string
	if o.update == "early" {
		names = append(names, "qe-identity-early.json")
	}
	return o.docWithChain(append(names, "qe-identity.json")...)
}

func (o *offlineSource) pckCRL(_ context.Context, ca string) (raw, error) {
	if f, err := o.isFile(); err != nil {
		return raw{}, err
	} else if f {
		return o.fromTool(func(t *toolCollaterals) (raw, error) { return t.pckCRL(ca) })
	}
	_, b, err := o.readFirst("pckcrl-"+ca+".der", "pckcrl-"+ca+".pem")
	return raw{body: b}, err
}

func (o *offlineSource) rootCRL(context.Context, string) (raw, error) {
	if f, err := o.isFile(); err != nil {
		return raw{}, err
	} else if f {
		return o.fromTool(func(t *toolCollaterals) (raw, error) { return raw{body: []byte(t.RootCACRL)}, nil })
	}
	_, b, err := o.readFirst("rootcacrl.der", "rootcacrl.pem")
	return raw{body: b}, err
}

func (o *offlineSource) fromTool(pick func(*toolCollaterals) (raw, error)) (raw, error) {
	b, err := os.ReadFile(o.path)
	if err != nil {
		return raw{}, fmt.Errorf("%w: %v", ErrCollateralUnavailable, err)
	}
	var doc struct {
		Collaterals toolCollaterals `json:"collaterals"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return raw{}, fmt.Errorf("%w: %s: %v", ErrInvalidCollateral, o.path, err)
	}
	return pick(&doc.Collaterals)
}

// toolCollaterals is the "collaterals" object written by Intel's PCS client
// tool (the file Trustee's file:// collateral_service points to).
type toolCollaterals struct {
	TCBInfos []struct {
		FMSPC          string          `json:"fmspc"`
		TDXTCBInfo     json.RawMessage `json:"tdx_tcbinfo"`
		TDXTCBInfoEarl json.RawMessage `json:"tdx_tcbinfo_early"`
	} `json:"tcbinfos"`
	TDQEIdentity      json.RawMessage `json:"tdqeidentity"`
	TDQEIdentityEarly json.RawMessage `json:"tdqeidentity_early"`
	PCKCACRL          struct {
		ProcessorCRL string `json:"processorCrl"`
		PlatformCRL  string `json:"platformCrl"`
	} `json:"pckcacrl"`
	Certificates struct {
		TCBInfoChain  string `json:"TCB-Info-Issuer-Chain"`
		IdentityChain string `json:"SGX-Enclave-Identity-Issuer-Chain"`
	} `json:"certificates"`
	RootCACRL string `json:"rootcacrl"`
}

func pickUpdate(early, standard json.RawMessage, update string) json.RawMessage {
	if update == "early" && len(early) > 0 && string(early) != "null" {
		return early
	}
	if len(standard) > 0 && string(standard) != "null" {
		return standard
	}
	return nil
}

func (t *toolCollaterals) tcbInfo(fm, update string) (raw, error) {
	for _, e := range t.TCBInfos {
		if !strings.EqualFold(e.FMSPC, fm) {
			continue
		}
		if b := pickUpdate(e.TDXTCBInfoEarl, e.TDXTCBInfo, update); b != nil {
			chain, err := decodeChainHeader(t.Certificates.TCBInfoChain)
			if err != nil {
				return raw{}, fmt.Errorf("%w: %v", ErrSigningChain, err)
			}
			return raw{body: b, chain: []byte(chain)}, nil
		}
	}
	return raw{}, fmt.Errorf("%w: no TDX tcbinfo for FMSPC %s", ErrCollateralUnavailable, fm)
}

func (t *toolCollaterals) qeIdentity(update string) (raw, error) {
	b := pickUpdate(t.TDQEIdentityEarly, t.TDQEIdentity, update)
	if b == nil {
		return raw{}, fmt.Errorf("%w: no tdqeidentity", ErrCollateralUnavailable)
	}
	chain, err := decodeChainHeader(t.Certificates.IdentityChain)
	if err != nil {
		return raw{}, fmt.Errorf("%w: %v", ErrSigningChain, err)
	}
	return raw{body: b, chain: []byte(chain)}, nil
}

func (t *toolCollaterals) pckCRL(ca string) (raw, error) {
	s := t.PCKCACRL.PlatformCRL
	if ca == "processor" {
		s = t.PCKCACRL.ProcessorCRL
	}
	if s == "" {
		return raw{}, fmt.Errorf("%w: no %s PCK CRL", ErrCollateralUnavailable, ca)
	}
	return raw{body: []byte(s)}, nil
}

// decodeChainHeader decodes a URL-encoded PEM issuer chain. Intel encodes
// spaces as %20 and '+' as %2B; a literal '+' is kept (base64) unless the
// value is form-encoded ("BEGIN+CERTIFICATE"), where '+' means space.
func decodeChainHeader(v string) (string, error) {
	if strings.Contains(v, "BEGIN+CERTIFICATE") {
		return url.QueryUnescape(v)
	}
	return url.PathUnescape(v)
}
