package tpm2

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

type genericEvidence struct {
	AKPublic string `json:"ak_public"`
	TPMQuote struct {
		Message   string   `json:"message"`
		Signature string   `json:"signature"`
		PCRs      []string `json:"pcrs"`
	} `json:"tpm_quote"`
}

type genericVector struct {
	ak   crypto.PublicKey
	msg  []byte
	sig  []byte
	pcrs [][]byte
}

func loadGeneric(t testing.TB) genericVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/tpm_evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev genericEvidence
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(ev.AKPublic)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := base64.StdEncoding.DecodeString(ev.TPMQuote.Message)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(ev.TPMQuote.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return genericVector{ak: ak, msg: msg, sig: sig, pcrs: hexList(t, ev.TPMQuote.PCRs)}
}

func hexList(t testing.TB, in []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

type azureQuote struct {
	Signature string   `json:"signature"`
	Message   string   `json:"message"`
	PCRs      []string `json:"pcrs"`
}

func loadAzure(t testing.TB) (msg, sig []byte, pcrs [][]byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/tpm-quote-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var q azureQuote
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	msg, err = hex.DecodeString(q.Message)
	if err != nil {
		t.Fatal(err)
	}
	sig, err = hex.DecodeString(q.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return msg, sig, hexList(t, q.PCRs)
}

func TestParseAttestGeneric(t *testing.T) {
	v := loadGeneric(t)
	a, err := ParseAttest(v.msg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Magic != GeneratedValue || a.Type != STAttestQuote {
		t.Fatalf("magic/type = %x/%x", a.Magic, a.Type)
	}
	if a.FirmwareVersion != 0x2019102300163636 {
		t.Errorf("firmwareVersion = %#x", a.FirmwareVersion)
	}
	if len(a.ExtraData) != 64 {
		t.Fatalf("extraData has %d bytes, want 64", len(a.ExtraData))
	}
	if got := hex.EncodeToString(a.ExtraData[:6]); got != "a04182b50687" {
		t.Errorf("extraData starts %s", got)
	}
	if !bytes.Equal(a.ExtraData[48:], make([]byte, 16)) {
		t.Errorf("extraData[48:] = %x, want 16 zero bytes", a.ExtraData[48:])
	}
	if len(a.PCRSelect) != 1 || a.PCRSelect[0].Hash != AlgSHA256 || len(a.PCRSelect[0].PCRs()) != 24 {
		t.Errorf("selection = %+v", a.PCRSelect)
	}
	s, err := ParseSignature(v.sig)
	if err != nil {
		t.Fatal(err)
	}
	if s.Alg != AlgRSASSA || s.Hash != AlgSHA256 || len(s.RSA) != 256 {
		t.Errorf("signature = alg %x hash %x len %d", s.Alg, s.Hash, len(s.RSA))
	}
	if err := VerifySignature(v.ak, v.msg, s); err != nil {
		t.Errorf("VerifySignature: %v", err)
	}
	if err := a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: v.pcrs}); err != nil {
		t.Errorf("CheckPCRs: %v", err)
	}
}

func TestGenericTampered(t *testing.T) {
	v := loadGeneric(t)
	a, err := ParseAttest(v.msg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSignature(v.sig)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("signature bit", func(t *testing.T) {
		bad := *s
		bad.RSA = bytes.Clone(s.RSA)
		bad.RSA[10] ^= 0x01
		if err := VerifySignature(v.ak, v.msg, &bad); !errors.Is(err, ErrSignature) {
			t.Fatalf("err = %v, want ErrSignature", err)
		}
	})
	t.Run("message bit", func(t *testing.T) {
		msg := bytes.Clone(v.msg)
		msg[len(msg)-1] ^= 0x80
		if err := VerifySignature(v.ak, msg, s); !errors.Is(err, ErrSignature) {
			t.Fatalf("err = %v, want ErrSignature", err)
		}
	})
	t.Run("pcr value", func(t *testing.T) {
		pcrs := make([][]byte, len(v.pcrs))
		for i := range pcrs {
			pcrs[i] = bytes.Clone(v.pcrs[i])
		}
		pcrs[11][0] ^= 1
		if err := a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: pcrs}); !errors.Is(err, ErrPCRDigest) {
			t.Fatalf("err = %v, want ErrPCRDigest", err)
		}
	})
	t.Run("pcr missing", func(t *testing.T) {
		if err := a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: v.pcrs[:23]}); !errors.Is(err, ErrPCRSelection) {
			t.Fatalf("err = %v, want ErrPCRSelection", err)
		}
	})
	t.Run("pcr short", func(t *testing.T) {
		pcrs := append([][]byte(nil), v.pcrs...)
		pcrs[3] = pcrs[3][:31]
		if err := a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: pcrs}); !errors.Is(err, ErrPCRSelection) {
			t.Fatalf("err = %v, want ErrPCRSelection", err)
		}
	})
	t.Run("wrong key type", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err := VerifySignature(&k.PublicKey, v.msg, s); !errors.Is(err, ErrSignature) {
			t.Fatalf("err = %v, want ErrSignature", err)
		}
	})
}

func TestAzureRawSignature(t *testing.T) {
	msg, sig, pcrs := loadAzure(t)
	a, err := ParseAttest(msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.ExtraData) != "challenge" {
		t.Errorf("extraData = %q, want challenge", a.ExtraData)
	}
	if err := a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: pcrs}); err != nil {
		t.Errorf("CheckPCRs: %v", err)
	}
	if got := RawRSASSA(sig); got.Alg != AlgRSASSA || got.Hash != AlgSHA256 || !bytes.Equal(got.RSA, sig) {
		t.Errorf("RawRSASSA = %+v", got)
	}
	// A raw 256-byte value is not a TPMT_SIGNATURE.
	if _, err := ParseSignature(sig); err == nil {
		t.Error("ParseSignature accepted a raw RSA signature")
	}
}

func TestParseAttestErrors(t *testing.T) {
	v := loadGeneric(t)
	cases := map[string]struct {
		mut  func([]byte) []byte
		want error
	}{
		"magic":     {func(b []byte) []byte { b[0] = 0; return b }, ErrBadMagic},
		"type":      {func(b []byte) []byte { b[5] = 0x17; return b }, ErrNotQuote},
		"truncated": {func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
		"trailing":  {func(b []byte) []byte { return append(b, 0) }, ErrTrailingData},
		"empty":     {func(b []byte) []byte { return nil }, ErrTruncated},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseAttest(c.mut(bytes.Clone(v.msg))); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := ParseSignature([]byte{0x00, 0x99, 0x00, 0x0b, 0, 0}); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("unknown scheme: %v", err)
	}
	if _, err := ParseSignature(append(bytes.Clone(v.sig), 1)); !errors.Is(err, ErrTrailingData) {
		t.Errorf("trailing: %v", err)
	}
}

// synthQuote builds a quote over 24 SHA-256 PCRs with the given nonce.
func synthQuote(nonce []byte, pcrs [][]byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, GeneratedValue)
	b = binary.BigEndian.AppendUint16(b, STAttestQuote)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = append(b, 0x00, 0x04)
	b = binary.BigEndian.AppendUint16(b, uint16(len(nonce)))
	b = append(b, nonce...)
	b = binary.BigEndian.AppendUint64(b, 12345)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 2)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, 0x1122334455667788)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, AlgSHA256)
	b = append(b, 3, 0xff, 0xff, 0xff)
	h := sha256.New()
	for _, p := range pcrs {
		h.Write(p)
	}
	b = binary.BigEndian.AppendUint16(b, 32)
	return h.Sum(b)
}

func marshalSig(s *Signature) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, s.Alg)
	b = binary.BigEndian.AppendUint16(b, s.Hash)
	if s.Alg == AlgECDSA {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.R)))
		b = append(b, s.R...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.S)))
		return append(b, s.S...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.RSA)))
	return append(b, s.RSA...)
}

func TestSchemes(t *testing.T) {
	pcrs := make([][]byte, 24)
	for i := range pcrs {
		pcrs[i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	msg := synthQuote([]byte("nonce"), pcrs)
	a, err := ParseAttest(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !a.ClockInfo.Safe || a.ClockInfo.Clock != 12345 || len(a.QualifiedSigner) != 2 {
		t.Errorf("clock/signer = %+v %x", a.ClockInfo, a.QualifiedSigner)
	}
	if err := a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: pcrs}); err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d256 := sha256.Sum256(msg)
	h384 := crypto.SHA384.New()
	h384.Write(msg)
	d384 := h384.Sum(nil)

	pss, err := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d256[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	r, s, err := ecdsa.Sign(rand.Reader, ek, d384)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		pub  crypto.PublicKey
		sig  *Signature
	}{
		{"rsapss", &rk.PublicKey, &Signature{Alg: AlgRSAPSS, Hash: AlgSHA256, RSA: pss}},
		{"ecdsa", &ek.PublicKey, &Signature{Alg: AlgECDSA, Hash: AlgSHA384, R: r.Bytes(), S: s.Bytes()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parsed, err := ParseSignature(marshalSig(c.sig))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(c.pub, msg, parsed); err != nil {
				t.Fatalf("verify: %v", err)
			}
			bad := bytes.Clone(msg)
			bad[20] ^= 1
			if err := VerifySignature(c.pub, bad, parsed); !errors.Is(err, ErrSignature) {
				t.Fatalf("tampered: %v", err)
			}
		})
	}
	if err := VerifySignature(&rk.PublicKey, msg, &Signature{Alg: AlgRSASSA, Hash: AlgSHA1}); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("sha1: %v", err)
	}
}

func BenchmarkParseAndVerifyGeneric(b *testing.B) {
	v := loadGeneric(b)
	banks := map[uint16][][]byte{AlgSHA256: v.pcrs}
	b.ReportAllocs()
	for b.Loop() {
		a, err := ParseAttest(v.msg)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ParseSignature(v.sig)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifySignature(v.ak, v.msg, s); err != nil {
			b.Fatal(err)
		}
		if err := a.CheckPCRs(AlgSHA256, banks); err != nil {
			b.Fatal(err)
		}
	}
}
