package ear

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// Defaults used by NewBroker for empty BrokerConfig fields.
const (
	DefaultIssuer    = "CoCo-Attestation-Service"
	DefaultDeveloper = "https://confidentialcontainers.org"
	DefaultProfile   = "tag:github.com,2024:confidential-containers/Trustee"
	DefaultBuild     = "sigil attestation-service"
	DefaultDuration  = 5 * time.Minute
)

// BrokerConfig configures a token Broker.
type BrokerConfig struct {
	// Signer signs tokens; it must hold an ECDSA P-256 key.
	Signer crypto.Signer
	// CertChain, leaf first, is published as the jwk "x5c"; the leaf must
	// certify Signer's public key.
	CertChain []*x509.Certificate
	// CertURL is published as the jwk "x5u".
	CertURL string
	// Issuer is "iss", Developer and Build form "ear.verifier-id", Profile
	// is "eat_profile".
	Issuer, Developer, Build, Profile string
	// Duration is exp - iat.
	Duration time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Broker issues ES256-signed EAR tokens. It is safe for concurrent use.
type Broker struct {
	signer   crypto.Signer
	now      func() time.Time
	duration int64

	headerB64 []byte // base64url of the protected header
	jwk       map[string]any
	jwks      []byte

	// JSON-encoded fixed payload fragments.
	prefix []byte // {"eat_profile":…,"iat":
	middle []byte // ,"ear.verifier-id":{…},"submods":
	suffix []byte // ,"iss":…}

	bufs sync.Pool // *payloadBuf
}

type payloadBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// NewBroker validates cfg and prepares the fixed parts of every token.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Signer == nil {
		return nil, errors.New("ear: broker needs a signer")
	}
	pub, ok := cfg.Signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("ear: signer must be an ECDSA P-256 key")
	}
	if len(cfg.CertChain) > 0 {
		leaf := cfg.CertChain[0]
		lk, ok := leaf.PublicKey.(*ecdsa.PublicKey)
		if !ok || !lk.Equal(pub) {
			return nil, errors.New("ear: leaf certificate does not match the signer's public key")
		}
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Developer == "" {
		cfg.Developer = DefaultDeveloper
	}
	if cfg.Build == "" {
		cfg.Build = DefaultBuild
	}
	if cfg.Profile == "" {
		cfg.Profile = DefaultProfile
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Duration < 0 {
		return nil, errors.New("ear: negative token duration")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	b := &Broker{signer: cfg.Signer, now: cfg.Now, duration: int64(cfg.Duration / time.Second)}

	pt, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, fmt.Errorf("ear: public key: %w", err)
	}
	x := base64.RawURLEncoding.EncodeToString(pt[1:33])
	y := base64.RawURLEncoding.EncodeToString(pt[33:65])

	// The header jwk is written by hand so that member order is stable.
	var jwk bytes.Buffer
	jwk.WriteString(`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `","alg":"ES256"`)
	b.jwk = map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "ES256"}
	if cfg.CertURL != "" {
		u, _ := json.Marshal(cfg.CertURL)
		jwk.WriteString(`,"x5u":`)
		jwk.Write(u)
		b.jwk["x5u"] = cfg.CertURL
	}
	if len(cfg.CertChain) > 0 {
		chain := make([]string, len(cfg.CertChain))
		for i, c := range cfg.CertChain {
			chain[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		c, _ := json.Marshal(chain)
		jwk.WriteString(`,"x5c":`)
		jwk.Write(c)
		b.jwk["x5c"] = chain
	}
	jwk.WriteByte('}')

	header := `{"typ":"JWT","alg":"ES256","jwk":` + jwk.String() + `}`
	b.headerB64 = base64.RawURLEncoding.AppendEncode(nil, []byte(header))
	b.jwks = []byte(`{"keys":[` + jwk.String() + `]}`)

	str := func(s string) string {
		var sb bytes.Buffer
		enc := json.NewEncoder(&sb)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s) // encoding a string cannot fail
		return string(bytes.TrimSuffix(sb.Bytes(), []byte("\n")))
	}
	b.prefix = []byte(`{"eat_profile":` + str(cfg.Profile) + `,"iat":`)
	b.middle = []byte(`,"ear.verifier-id":{"developer":` + str(cfg.Developer) + `,"build":` + str(cfg.Build) + `},"submods":`)
	b.suffix = []byte(`,"iss":` + str(cfg.Issuer) + `}`)
	b.bufs.New = func() any {
		pb := &payloadBuf{}
		pb.enc = json.NewEncoder(&pb.buf)
		pb.enc.SetEscapeHTML(false)
		return pb
	}
	return b, nil
}

// PublicJWK returns the signing key as a JWK (a fresh map per call).
func (b *Broker) PublicJWK() map[string]any {
	m := make(map[string]any, len(b.jwk))
	for k, v := range b.jwk {
		if s, ok := v.([]string); ok {
			v = slices.Clone(s)
		}
		m[k] = v
	}
	return m
}

// JWKS returns {"keys":[jwk]}.
func (b *Broker) JWKS() []byte { return slices.Clone(b.jwks) }

// replacementEscape is how encoding/json writes each byte of invalid UTF-8
// in a string or member name.
var replacementEscape = []byte(`\ufffd`)

// Issue builds and signs an EAR token over the given submodules.
//
// Claim values are JSON-encoded, never spliced: quotes, backslashes,
// control characters, U+2028 and U+2029 in attacker-controlled strings are
// escaped and come back unchanged from any JSON parser. Strings that are not
// valid UTF-8 (for example a WTF-8 lone surrogate, "\xed\xa0\x80") cannot
// be represented in JSON; each offending byte is replaced by U+FFFD, as
// encoding/json does. When such a replacement makes two member names of one
// object equal ("a\xff" and "a\xfe" both become "a\ufffd"), the payload
// would be ambiguous, and Issue fails instead of signing it.
func (b *Broker) Issue(submods map[string]Submod) (string, error) {
	if len(submods) == 0 {
		return "", errors.New("ear: token needs at least one submod")
	}
	pb := b.bufs.Get().(*payloadBuf)
	defer func() {
		if pb.buf.Cap() <= 1<<20 { // do not keep huge buffers alive
			pb.buf.Reset()
			b.bufs.Put(pb)
		}
	}()
	buf := &pb.buf
	buf.Reset()

	iat := b.now().Unix()
	buf.Write(b.prefix)
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), iat, 10))
	buf.Write(b.middle)
	buf.WriteByte('{')
	for i, name := range sortedKeys(submods) {
		sm := submods[name]
		if name == "" {
			return "", errors.New("ear: empty submod name")
		}
		if err := sm.validate(); err != nil {
			return "", fmt.Errorf("submod %q: %w", name, err)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeValue(buf, pb.enc, name); err != nil {
			return "", err
		}
		buf.WriteByte(':')
		if err := sm.encodeTo(buf, pb.enc); err != nil {
			return "", fmt.Errorf("submod %q: %w", name, err)
		}
	}
	buf.WriteString(`},"exp":`)
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), iat+b.duration, 10))
	buf.Write(b.suffix)
	// Only a payload into which the encoder substituted U+FFFD can hold
	// duplicate member names; the full strict check is skipped otherwise
	// (it would cost about 40 % of Issue on a 20 KB token).
	if bytes.Contains(buf.Bytes(), replacementEscape) {
		if err := strictjson.Validate(buf.Bytes()); err != nil {
			return "", fmt.Errorf("ear: claims are not representable as unambiguous JSON (invalid UTF-8 in member names?): %w", err)
		}
	}
	return b.sign(buf.Bytes())
}

// sign produces header.payload.signature for the JSON payload.
func (b *Broker) sign(payload []byte) (string, error) {
	hl := len(b.headerB64)
	pl := base64.RawURLEncoding.EncodedLen(len(payload))
	sl := base64.RawURLEncoding.EncodedLen(64)
	out := make([]byte, 0, hl+1+pl+1+sl)
	out = append(out, b.headerB64...)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, payload)

	digest := sha256.Sum256(out)
	der, err := b.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("ear: sign: %w", err)
	}
	var sig [64]byte
	if err := derToRaw(der, &sig); err != nil {
		return "", err
	}
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, sig[:])
	return string(out), nil
}

// derToRaw converts an ASN.1 ECDSA signature into the JWS r||s form.
func derToRaw(der []byte, out *[64]byte) error {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil ||
		rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return errors.New("ear: signer returned a malformed ECDSA signature")
	}
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return nil
}

// LoadSigner parses a PEM EC P-256 private key (PKCS#8 "PRIVATE KEY" or SEC1
// "EC PRIVATE KEY").
func LoadSigner(keyPEM []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, keyPEM = pem.Decode(keyPEM)
		if blk == nil {
			return nil, errors.New("ear: no private key PEM block found")
		}
		var key any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "EC PARAMETERS":
			continue // openssl ecparam -genkey emits this before the key
		default:
			return nil, fmt.Errorf("ear: unsupported PEM block %q", blk.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("ear: parse private key: %w", err)
		}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, errors.New("ear: token signing key must be ECDSA P-256")
		}
		return k, nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
