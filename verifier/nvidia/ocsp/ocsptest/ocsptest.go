// Package ocsptest is a fake OCSP responder (RFC 6960) for end-to-end tests
// of code that uses the ocsp package with a synthetic PKI. It parses the
// DER OCSPRequest, finds the issuer by the CertID hashes (SHA-1, SHA-256 or
// SHA-384), and answers a BasicOCSPResponse signed by the issuer's delegated
// responder certificate (or the issuer key), echoing the request nonce in
// responseExtensions as NVIDIA's responder does.
package ocsptest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Issuer is a CA whose certificates the responder answers for.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer // signs responses when Responder is nil
	// Responder/ResponderKey, when set, form the delegated OCSP signer
	// (see NewDelegatedSigner); it is included in the response.
	Responder    *x509.Certificate
	ResponderKey crypto.Signer
}

type status struct {
	revoked bool
	unknown bool
	reason  int
	at      time.Time
}

// Responder is an http.Handler answering OCSP requests. Certificates are
// "good" unless marked with Revoke or MarkUnknown.
type Responder struct {
	// Now is the clock for thisUpdate/producedAt; nil means time.Now.
	Now func() time.Time
	// Validity is nextUpdate − thisUpdate; 0 means 24 h.
	Validity time.Duration

	issuers  []Issuer
	mu       sync.Mutex
	statuses map[string]status
	requests atomic.Int64
}

// NewResponder returns a responder for the given issuers.
func NewResponder(issuers ...Issuer) *Responder {
	return &Responder{issuers: issuers, statuses: map[string]status{}}
}

// Revoke marks serial revoked with an RFC 5280 CRLReason (6 =
// certificateHold; -1 for none).
func (r *Responder) Revoke(serial *big.Int, reason int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[serial.String()] = status{revoked: true, reason: reason, at: at}
}

// MarkUnknown makes the responder answer "unknown" for serial.
func (r *Responder) MarkUnknown(serial *big.Int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[serial.String()] = status{unknown: true}
}

// Requests returns the number of requests received.
func (r *Responder) Requests() int64 { return r.requests.Load() }

// NewDelegatedSigner issues a P-384 OCSP signing certificate (EKU
// OCSPSigning) from issuer.
func NewDelegatedSigner(issuer *x509.Certificate, issuerKey crypto.Signer, notBefore, notAfter time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: issuer.Subject.CommonName + " OCSP signer"},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

type certID struct {
	HashAlgorithm  pkix.AlgorithmIdentifier
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

type request struct {
	TBS struct {
		Version int `asn1:"explicit,tag:0,default:0,optional"`
		List    []struct {
			CertID certID
			Exts   []pkix.Extension `asn1:"explicit,tag:0,optional"`
		}
		Exts []pkix.Extension `asn1:"explicit,tag:2,optional"`
	}
}

type single struct {
	CertID     certID
	Status     asn1.RawValue
	ThisUpdate time.Time `asn1:"generalized"`
	NextUpdate time.Time `asn1:"generalized,explicit,tag:0,optional"`
}

type responseData struct {
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []single
	Exts        []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type basic struct {
	TBS    asn1.RawValue
	SigAlg pkix.AlgorithmIdentifier
	Sig    asn1.BitString
	Certs  []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type responseBytes struct {
	Type asn1.ObjectIdentifier
	Resp []byte
}

type response struct {
	Status asn1.Enumerated
	Bytes  responseBytes `asn1:"explicit,tag:0,optional"`
}

var (
	oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	hashes   = []struct {
		oid asn1.ObjectIdentifier
		fn  func([]byte) []byte
	}{
		{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, func(b []byte) []byte { s := sha1.Sum(b); return s[:] }},
		{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
		{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }},
	}
)

func keyBits(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		A pkix.AlgorithmIdentifier
		K asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	return spki.K.Bytes, nil
}

func writeStatus(w http.ResponseWriter, code asn1.Enumerated) {
	der, _ := asn1.Marshal(response{Status: code})
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

// ServeHTTP implements http.Handler (POST, application/ocsp-request).
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ocspReq request
	if rest, err := asn1.Unmarshal(body, &ocspReq); err != nil || len(rest) != 0 || len(ocspReq.TBS.List) != 1 {
		writeStatus(w, 1) // malformedRequest
		return
	}
	id := ocspReq.TBS.List[0].CertID
	var iss *Issuer
	for _, h := range hashes {
		if !h.oid.Equal(id.HashAlgorithm.Algorithm) {
			continue
		}
		for i := range r.issuers {
			kb, err := keyBits(r.issuers[i].Cert)
			if err == nil && bytes.Equal(h.fn(r.issuers[i].Cert.RawSubject), id.IssuerNameHash) && bytes.Equal(h.fn(kb), id.IssuerKeyHash) {
				iss = &r.issuers[i]
			}
		}
	}
	if iss == nil {
		writeStatus(w, 6) // unauthorized
		return
	}
	der, err := r.respond(ocspReq, id, iss)
	if err != nil {
		writeStatus(w, 2) // internalError
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

func (r *Responder) respond(req request, id certID, iss *Issuer) ([]byte, error) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	now = now.UTC().Truncate(time.Second)
	validity := r.Validity
	if validity == 0 {
		validity = 24 * time.Hour
	}
	r.mu.Lock()
	st := r.statuses[id.SerialNumber.String()]
	r.mu.Unlock()
	var certStatus asn1.RawValue
	switch {
	case st.unknown:
		certStatus = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2}
	case st.revoked:
		ri := struct {
			At     time.Time       `asn1:"generalized"`
			Reason asn1.Enumerated `asn1:"explicit,tag:0,optional,default:-1"`
		}{At: st.at.UTC().Truncate(time.Second), Reason: asn1.Enumerated(st.reason)}
		der, err := asn1.MarshalWithParams(ri, "tag:1")
		if err != nil {
			return nil, err
		}
		certStatus = asn1.RawValue{FullBytes: der}
	default:
		certStatus = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0}
	}
	signer, key := iss.Cert, iss.Key
	if iss.Responder != nil {
		signer, key = iss.Responder, iss.ResponderKey
	}
	data := responseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: signer.RawSubject},
		ProducedAt:  now,
		Responses:   []single{{CertID: id, Status: certStatus, ThisUpdate: now, NextUpdate: now.Add(validity)}},
	}
	for _, e := range req.TBS.Exts {
		if e.Id.Equal(oidNonce) {
			data.Exts = append(data.Exts, e)
		}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, err
	}
	sigAlg, hash, err := signatureAlgorithm(key)
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(tbs)
	sig, err := key.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, err
	}
	b := basic{TBS: asn1.RawValue{FullBytes: tbs}, SigAlg: sigAlg, Sig: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}}
	if iss.Responder != nil {
		b.Certs = []asn1.RawValue{{FullBytes: iss.Responder.Raw}}
	}
	basicDER, err := asn1.Marshal(b)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(response{Bytes: responseBytes{Type: oidBasic, Resp: basicDER}})
}

func signatureAlgorithm(key crypto.Signer) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve.Params().BitSize {
		case 384:
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}}, crypto.SHA384, nil
		case 256:
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, crypto.SHA256, nil
		}
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, errors.New("ocsptest: unsupported signer key")
}
