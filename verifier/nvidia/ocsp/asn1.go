package ocsp

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	// Register the hash functions CertID may use.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Object identifiers (RFC 6960, RFC 8954, RFC 5754, RFC 5758).
var (
	oidNonce            = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidBasicResponse    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidSHA1             = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSAWithSHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidEd25519          = asn1.ObjectIdentifier{1, 3, 101, 112}
	hashOIDs            = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA1: oidSHA1, crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}
	signatureAlgorithms = map[string]x509.SignatureAlgorithm{
		oidECDSAWithSHA256.String(): x509.ECDSAWithSHA256,
		oidECDSAWithSHA384.String(): x509.ECDSAWithSHA384,
		oidECDSAWithSHA512.String(): x509.ECDSAWithSHA512,
		oidSHA256WithRSA.String():   x509.SHA256WithRSA,
		oidSHA384WithRSA.String():   x509.SHA384WithRSA,
		oidSHA512WithRSA.String():   x509.SHA512WithRSA,
		oidEd25519.String():         x509.PureEd25519,
	}
)

// certID is RFC 6960 CertID.
type certID struct {
	HashAlgorithm  pkix.AlgorithmIdentifier
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

func (id certID) key() string {
	return fmt.Sprintf("%s|%x|%x|%s", id.HashAlgorithm.Algorithm, id.IssuerNameHash, id.IssuerKeyHash, id.SerialNumber)
}

func (id certID) equal(o certID) bool {
	return id.HashAlgorithm.Algorithm.Equal(o.HashAlgorithm.Algorithm) &&
		string(id.IssuerNameHash) == string(o.IssuerNameHash) &&
		string(id.IssuerKeyHash) == string(o.IssuerKeyHash) &&
		id.SerialNumber != nil && o.SerialNumber != nil && id.SerialNumber.Cmp(o.SerialNumber) == 0
}

type singleRequest struct {
	Cert certID
}

type tbsRequest struct {
	Version     int `asn1:"explicit,tag:0,default:0,optional"`
	RequestList []singleRequest
	Extensions  []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

type ocspRequest struct {
	TBSRequest tbsRequest
}

// subjectPublicKeyBits returns the contents of the subjectPublicKey BIT
// STRING of a certificate (what issuerKeyHash hashes).
func subjectPublicKeyBits(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("parse SubjectPublicKeyInfo: %v", err)
	}
	return spki.PublicKey.RightAlign(), nil
}

// newCertID computes the CertID of cert issued by issuer with hash h.
func newCertID(cert, issuer *x509.Certificate, h crypto.Hash) (certID, error) {
	oid, ok := hashOIDs[h]
	if !ok || !h.Available() {
		return certID{}, fmt.Errorf("ocsp: unsupported CertID hash %v", h)
	}
	keyBits, err := subjectPublicKeyBits(issuer)
	if err != nil {
		return certID{}, err
	}
	nh := h.New()
	nh.Write(issuer.RawSubject)
	kh := h.New()
	kh.Write(keyBits)
	return certID{
		HashAlgorithm:  pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
		IssuerNameHash: nh.Sum(nil),
		IssuerKeyHash:  kh.Sum(nil),
		SerialNumber:   cert.SerialNumber,
	}, nil
}

// marshalRequest builds a DER OCSPRequest for id with a nonce extension
// (RFC 8954: the extension value is a DER OCTET STRING holding the nonce).
func marshalRequest(id certID, nonce []byte) ([]byte, []byte, error) {
	nonceValue, err := asn1.Marshal(nonce)
	if err != nil {
		return nil, nil, err
	}
	req := ocspRequest{TBSRequest: tbsRequest{
		RequestList: []singleRequest{{Cert: id}},
		Extensions:  []pkix.Extension{{Id: oidNonce, Value: nonceValue}},
	}}
	der, err := asn1.Marshal(req)
	return der, nonceValue, err
}

// Wire structures of the response (RFC 6960 §4.2.1).
type responseASN1 struct {
	Status   asn1.Enumerated
	Response responseBytes `asn1:"explicit,tag:0,optional"`
}

type responseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type basicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type responseData struct {
	Version     int `asn1:"optional,default:0,explicit,tag:0"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []singleResponse
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type singleResponse struct {
	CertID           certID
	CertStatus       asn1.RawValue
	ThisUpdate       time.Time        `asn1:"generalized"`
	NextUpdate       time.Time        `asn1:"generalized,explicit,tag:0,optional"`
	SingleExtensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type revokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional,default:-1"`
}

// OCSPResponseStatus values (RFC 6960).
var responseStatusNames = map[asn1.Enumerated]string{
	0: "successful", 1: "malformedRequest", 2: "internalError", 3: "tryLater", 5: "sigRequired", 6: "unauthorized",
}

// parsedResponse is a structurally valid, not yet authenticated response.
type parsedResponse struct {
	tbs        []byte // DER of tbsResponseData (signed bytes)
	sigAlg     pkix.AlgorithmIdentifier
	signature  []byte
	certs      []*x509.Certificate
	data       responseData
	responder  asn1.RawValue
	extensions []pkix.Extension
}

const maxResponseCerts = 8

// parseResponse parses a DER OCSPResponse holding a BasicOCSPResponse.
func parseResponse(der []byte) (*parsedResponse, error) {
	var resp responseASN1
	rest, err := asn1.Unmarshal(der, &resp)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedResponse, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing data after OCSPResponse", ErrMalformedResponse)
	}
	if resp.Status != 0 {
		name := responseStatusNames[resp.Status]
		if name == "" {
			name = fmt.Sprintf("status %d", resp.Status)
		}
		return nil, fmt.Errorf("%w: %s", ErrResponseStatus, name)
	}
	if !resp.Response.ResponseType.Equal(oidBasicResponse) {
		return nil, fmt.Errorf("%w: response type %v is not id-pkix-ocsp-basic", ErrMalformedResponse, resp.Response.ResponseType)
	}
	var basic basicResponse
	rest, err = asn1.Unmarshal(resp.Response.Response, &basic)
	if err != nil {
		return nil, fmt.Errorf("%w: BasicOCSPResponse: %v", ErrMalformedResponse, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing data after BasicOCSPResponse", ErrMalformedResponse)
	}
	p := &parsedResponse{tbs: basic.TBSResponseData.FullBytes, sigAlg: basic.SignatureAlgorithm, signature: basic.Signature.RightAlign()}
	rest, err = asn1.Unmarshal(basic.TBSResponseData.FullBytes, &p.data)
	if err != nil {
		return nil, fmt.Errorf("%w: ResponseData: %v", ErrMalformedResponse, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing data after ResponseData", ErrMalformedResponse)
	}
	if p.data.Version != 0 {
		return nil, fmt.Errorf("%w: ResponseData version %d", ErrMalformedResponse, p.data.Version)
	}
	if len(basic.Certificates) > maxResponseCerts {
		return nil, fmt.Errorf("%w: %d certificates", ErrMalformedResponse, len(basic.Certificates))
	}
	for _, raw := range basic.Certificates {
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: responder certificate: %v", ErrMalformedResponse, err)
		}
		p.certs = append(p.certs, c)
	}
	p.responder = p.data.ResponderID
	p.extensions = p.data.Extensions
	for _, sr := range p.data.Responses {
		if _, _, _, err := certStatus(sr.CertStatus); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// certStatus decodes the CertStatus CHOICE.
func certStatus(v asn1.RawValue) (status string, revokedAt time.Time, reason int, err error) {
	if v.Class != asn1.ClassContextSpecific {
		return "", time.Time{}, 0, fmt.Errorf("%w: CertStatus class %d", ErrMalformedResponse, v.Class)
	}
	switch v.Tag {
	case 0:
		if v.IsCompound || len(v.Bytes) != 0 {
			return "", time.Time{}, 0, fmt.Errorf("%w: good status is not NULL", ErrMalformedResponse)
		}
		return StatusGood, time.Time{}, -1, nil
	case 1:
		var ri revokedInfo
		rest, err := asn1.UnmarshalWithParams(v.FullBytes, &ri, "tag:1")
		if err != nil || len(rest) != 0 {
			return "", time.Time{}, 0, fmt.Errorf("%w: RevokedInfo: %v", ErrMalformedResponse, err)
		}
		return StatusRevoked, ri.RevocationTime, int(ri.Reason), nil
	case 2:
		if v.IsCompound || len(v.Bytes) != 0 {
			return "", time.Time{}, 0, fmt.Errorf("%w: unknown status is not NULL", ErrMalformedResponse)
		}
		return StatusUnknown, time.Time{}, -1, nil
	}
	return "", time.Time{}, 0, fmt.Errorf("%w: CertStatus tag %d", ErrMalformedResponse, v.Tag)
}

// responderMatches reports whether the ResponderID names cert.
func responderMatches(id asn1.RawValue, cert *x509.Certificate) bool {
	if id.Class != asn1.ClassContextSpecific || !id.IsCompound {
		return false
	}
	switch id.Tag {
	case 1: // byName [1] EXPLICIT Name
		return string(id.Bytes) == string(cert.RawSubject)
	case 2: // byKey [2] EXPLICIT OCTET STRING (SHA-1 of the key bits)
		var kh []byte
		if rest, err := asn1.Unmarshal(id.Bytes, &kh); err != nil || len(rest) != 0 {
			return false
		}
		bits, err := subjectPublicKeyBits(cert)
		if err != nil {
			return false
		}
		h := crypto.SHA1.New()
		h.Write(bits)
		return string(h.Sum(nil)) == string(kh)
	}
	return false
}

var errNoSignatureAlgorithm = errors.New("unsupported signature algorithm")

func signatureAlgorithm(ai pkix.AlgorithmIdentifier) (x509.SignatureAlgorithm, error) {
	if alg, ok := signatureAlgorithms[ai.Algorithm.String()]; ok {
		return alg, nil
	}
	return x509.UnknownSignatureAlgorithm, fmt.Errorf("%w %v", errNoSignatureAlgorithm, ai.Algorithm)
}
