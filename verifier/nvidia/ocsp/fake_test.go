package ocsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate with its key.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

type certSpec struct {
	cn     string
	ca     bool
	eku    []x509.ExtKeyUsage
	nb, na time.Time
}

func mustCert(t testing.TB, spec certSpec, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if spec.nb.IsZero() {
		spec.nb = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if spec.na.IsZero() {
		spec.na = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{Organization: []string{"Sigil Test"}, CommonName: spec.cn},
		NotBefore: spec.nb, NotAfter: spec.na, BasicConstraintsValid: true, IsCA: spec.ca,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: spec.eku,
	}
	if spec.ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

// testPKI mimics a 3-level NVIDIA hierarchy: root → intermediate → leaf,
// with delegated OCSP signers for the root and the intermediate.
type testPKI struct {
	root, inter, leaf     *testCA
	rootResp, interResp   *testCA
	otherCA, otherResp    *testCA // an unrelated CA and its OCSP signer
	interNoEKU            *testCA // issued by inter, no OCSPSigning EKU
	expiredInterResponder *testCA
}

func newTestPKI(t testing.TB) *testPKI {
	ocspEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	p := &testPKI{}
	p.root = mustCert(t, certSpec{cn: "Test Device Identity CA", ca: true}, nil)
	p.inter = mustCert(t, certSpec{cn: "Test GH100 Identity", ca: true}, p.root)
	p.leaf = mustCert(t, certSpec{cn: "Test HCC RIM L4 Signer"}, p.inter)
	p.rootResp = mustCert(t, certSpec{cn: "Test OCSP root signer", eku: ocspEKU}, p.root)
	p.interResp = mustCert(t, certSpec{cn: "Test OCSP L2 signer", eku: ocspEKU}, p.inter)
	p.otherCA = mustCert(t, certSpec{cn: "Unrelated CA", ca: true}, nil)
	p.otherResp = mustCert(t, certSpec{cn: "Unrelated OCSP signer", eku: ocspEKU}, p.otherCA)
	p.interNoEKU = mustCert(t, certSpec{cn: "Test no-EKU signer"}, p.inter)
	p.expiredInterResponder = mustCert(t, certSpec{cn: "Expired OCSP signer", eku: ocspEKU,
		nb: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), na: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}, p.inter)
	return p
}

func (p *testPKI) chain() []*x509.Certificate {
	return []*x509.Certificate{p.leaf.cert, p.inter.cert, p.root.cert}
}

// Wire structures of the fake responder, written independently of the
// client's.
type fakeCertID struct {
	HashAlgorithm  pkix.AlgorithmIdentifier
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

type fakeRequest struct {
	TBS struct {
		Version int `asn1:"explicit,tag:0,default:0,optional"`
		List    []struct {
			CertID fakeCertID
			Exts   []pkix.Extension `asn1:"explicit,tag:0,optional"`
		}
		Exts []pkix.Extension `asn1:"explicit,tag:2,optional"`
	}
}

type fakeSingle struct {
	CertID     fakeCertID
	Status     asn1.RawValue
	ThisUpdate time.Time `asn1:"generalized"`
	NextUpdate time.Time `asn1:"generalized,explicit,tag:0,optional"`
}

type fakeData struct {
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []fakeSingle
	Exts        []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type fakeBasic struct {
	TBS    asn1.RawValue
	SigAlg pkix.AlgorithmIdentifier
	Sig    asn1.BitString
	Certs  []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type fakeRespBytes struct {
	Type asn1.ObjectIdentifier
	Resp []byte
}

type fakeResponse struct {
	Status asn1.Enumerated
	Bytes  fakeRespBytes `asn1:"explicit,tag:0,optional"`
}

// Behaviour knobs of the fake responder.
type fakeMode struct {
	status      string // good | revoked | unknown
	reason      int    // CRLReason for revoked; -1 for none
	nonce       string // echo (default) | wrong | none | raw
	thisUpdate  time.Duration
	nextUpdate  time.Duration // 0 → +24h; negative allowed
	noNext      bool
	badSig      bool
	signer      string // delegated (default) | issuer | unrelated | noeku | expired
	byKey       bool
	respStatus  int // OCSPResponseStatus; 0 successful
	httpStatus  int
	garbage     bool
	otherSerial bool
	wantHash    crypto.Hash
}

type fakeResponder struct {
	t        testing.TB
	pki      *testPKI
	now      func() time.Time
	mu       sync.Mutex
	mode     fakeMode
	requests atomic.Int64
	lastHash crypto.Hash
}

func (f *fakeResponder) setMode(m fakeMode) { f.mu.Lock(); f.mode = m; f.mu.Unlock() }

func keyBits(c *x509.Certificate) []byte {
	var spki struct {
		A pkix.AlgorithmIdentifier
		K asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		panic(err)
	}
	return spki.K.Bytes
}

var fakeHashes = []struct {
	h   crypto.Hash
	oid asn1.ObjectIdentifier
	fn  func([]byte) []byte
}{
	{crypto.SHA1, asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, func(b []byte) []byte { s := sha1.Sum(b); return s[:] }},
	{crypto.SHA256, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
	{crypto.SHA384, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }},
}

func (f *fakeResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	m := f.mode
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if m.httpStatus != 0 {
		w.WriteHeader(m.httpStatus)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req fakeRequest
	if rest, err := asn1.Unmarshal(body, &req); err != nil || len(rest) != 0 || len(req.TBS.List) != 1 {
		f.t.Errorf("fake responder: bad request: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.TBS.List[0].CertID
	// Identify the issuer by recomputing the hashes.
	var issuer, delegated *testCA
	for _, h := range fakeHashes {
		if !h.oid.Equal(id.HashAlgorithm.Algorithm) {
			continue
		}
		f.mu.Lock()
		f.lastHash = h.h
		f.mu.Unlock()
		for _, cand := range []struct{ ca, resp *testCA }{{f.pki.inter, f.pki.interResp}, {f.pki.root, f.pki.rootResp}} {
			if bytes.Equal(h.fn(cand.ca.cert.RawSubject), id.IssuerNameHash) && bytes.Equal(h.fn(keyBits(cand.ca.cert)), id.IssuerKeyHash) {
				issuer, delegated = cand.ca, cand.resp
			}
		}
	}
	if issuer == nil {
		f.t.Errorf("fake responder: unknown issuer / hash %v", id.HashAlgorithm.Algorithm)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if m.wantHash != 0 && f.lastHash != m.wantHash {
		f.t.Errorf("fake responder: CertID hash %v, want %v", f.lastHash, m.wantHash)
	}
	var nonceExt *pkix.Extension
	for i, e := range req.TBS.Exts {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}) {
			nonceExt = &req.TBS.Exts[i]
		}
	}
	if nonceExt == nil {
		f.t.Error("fake responder: request without nonce")
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	if m.garbage {
		_, _ = w.Write([]byte{0x30, 0x03, 0x0a, 0x01})
		return
	}
	if m.respStatus != 0 {
		der, _ := asn1.Marshal(fakeResponse{Status: asn1.Enumerated(m.respStatus)})
		_, _ = w.Write(der)
		return
	}
	_, _ = w.Write(f.build(m, id, issuer, delegated, nonceExt))
}

func (f *fakeResponder) build(m fakeMode, id fakeCertID, issuer, delegated *testCA, nonceExt *pkix.Extension) []byte {
	now := f.now().UTC().Truncate(time.Second)
	signer := delegated
	switch m.signer {
	case "issuer":
		signer = issuer
	case "unrelated":
		signer = f.pki.otherResp
	case "noeku":
		signer = f.pki.interNoEKU
	case "expired":
		signer = f.pki.expiredInterResponder
	}
	var status asn1.RawValue
	switch m.status {
	case "", "good":
		status = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0}
	case "unknown":
		status = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2}
	case "revoked":
		ri := struct {
			At     time.Time       `asn1:"generalized"`
			Reason asn1.Enumerated `asn1:"explicit,tag:0,optional,default:-1"`
		}{At: now.Add(-time.Hour), Reason: asn1.Enumerated(m.reason)}
		der, err := asn1.MarshalWithParams(ri, "tag:1")
		if err != nil {
			panic(err)
		}
		status = asn1.RawValue{FullBytes: der}
	}
	next := now.Add(24 * time.Hour)
	if m.nextUpdate != 0 {
		next = now.Add(m.nextUpdate)
	}
	if m.noNext {
		next = time.Time{}
	}
	if m.otherSerial {
		id.SerialNumber = new(big.Int).Add(id.SerialNumber, big.NewInt(1))
	}
	data := fakeData{
		ProducedAt: now,
		Responses:  []fakeSingle{{CertID: id, Status: status, ThisUpdate: now.Add(m.thisUpdate), NextUpdate: next}},
	}
	if m.byKey {
		kh := sha1.Sum(keyBits(signer.cert))
		inner, _ := asn1.Marshal(kh[:])
		data.ResponderID = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: inner}
	} else {
		data.ResponderID = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: signer.cert.RawSubject}
	}
	switch m.nonce {
	case "", "echo":
		data.Exts = []pkix.Extension{*nonceExt}
	case "raw":
		var raw []byte
		if _, err := asn1.Unmarshal(nonceExt.Value, &raw); err != nil {
			panic(err)
		}
		data.Exts = []pkix.Extension{{Id: nonceExt.Id, Value: raw}}
	case "wrong":
		v, _ := asn1.Marshal(bytes.Repeat([]byte{7}, 32))
		data.Exts = []pkix.Extension{{Id: nonceExt.Id, Value: v}}
	case "none":
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		panic(err)
	}
	h := sha512.Sum384(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, signer.key, h[:])
	if err != nil {
		panic(err)
	}
	if m.badSig {
		sig[len(sig)-1] ^= 1
	}
	basic := fakeBasic{
		TBS:    asn1.RawValue{FullBytes: tbs},
		SigAlg: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}},
		Sig:    asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if signer != issuer {
		basic.Certs = []asn1.RawValue{{FullBytes: signer.cert.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		panic(err)
	}
	der, err := asn1.Marshal(fakeResponse{Bytes: fakeRespBytes{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}, Resp: basicDER}})
	if err != nil {
		panic(err)
	}
	return der
}
