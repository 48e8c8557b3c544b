package ocsp

import (
	"crypto"
	"crypto/x509/pkix"
	"testing"
	"time"
)

// FuzzParseResponse: parsing and evaluating arbitrary responder output must
// never panic; anything accepted must be a fully valid answer.
func FuzzParseResponse(f *testing.F) {
	pki := newTestPKI(f)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fake := &fakeResponder{t: f, pki: pki, now: func() time.Time { return now }}
	id, err := newCertID(pki.leaf.cert, pki.inter.cert, crypto.SHA384)
	if err != nil {
		f.Fatal(err)
	}
	nonce := make([]byte, 32)
	_, nv, err := marshalRequest(id, nonce)
	if err != nil {
		f.Fatal(err)
	}
	ext := &pkix.Extension{Id: oidNonce, Value: nv}
	for _, m := range []fakeMode{
		{}, {status: "revoked", reason: 6}, {status: "unknown"}, {signer: "issuer"}, {byKey: true},
		{nonce: "wrong"}, {badSig: true}, {signer: "unrelated"}, {noNext: true},
	} {
		f.Add(fake.build(m, fakeCertID(id), pki.inter, pki.interResp, ext))
	}
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x03})
	c, err := New(Options{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := parseResponse(der)
		if err != nil {
			return
		}
		_ = p
		res, _, err := c.evaluate(der, id, pki.inter.cert, nonce, nv, now)
		if err == nil && (!res.ResponseValid || !res.NonceMatched) {
			t.Fatalf("accepted invalid response: %+v", res)
		}
	})
}
