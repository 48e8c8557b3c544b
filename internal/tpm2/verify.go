package tpm2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"math/big"

	// Register the hash implementations crypto.Hash.New needs.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// HashOf maps a TPM hash algorithm identifier to a crypto.Hash.
func HashOf(alg uint16) (crypto.Hash, error) {
	switch alg {
	case AlgSHA1:
		return crypto.SHA1, nil
	case AlgSHA256:
		return crypto.SHA256, nil
	case AlgSHA384:
		return crypto.SHA384, nil
	case AlgSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: hash 0x%04x", ErrUnsupportedAlg, alg)
}

// VerifySignature checks that sig is a signature by pub over msg (the
// marshalled TPMS_ATTEST). RSASSA and RSAPSS need an *rsa.PublicKey, ECDSA an
// *ecdsa.PublicKey. SHA-1 is refused.
func VerifySignature(pub crypto.PublicKey, msg []byte, sig *Signature) error {
	if sig == nil {
		return fmt.Errorf("%w: no signature", ErrSignature)
	}
	if sig.Hash == AlgSHA1 {
		return fmt.Errorf("%w: SHA-1 signatures are not accepted", ErrUnsupportedAlg)
	}
	h, err := HashOf(sig.Hash)
	if err != nil {
		return err
	}
	hh := h.New()
	hh.Write(msg)
	digest := hh.Sum(nil)
	switch sig.Alg {
	case AlgRSASSA, AlgRSAPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: RSA signature needs an RSA key, have %T", ErrSignature, pub)
		}
		if sig.Alg == AlgRSASSA {
			err = rsa.VerifyPKCS1v15(k, h, digest, sig.RSA)
		} else {
			err = rsa.VerifyPSS(k, h, digest, sig.RSA, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return nil
	case AlgECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ECDSA signature needs an ECDSA key, have %T", ErrSignature, pub)
		}
		r := new(big.Int).SetBytes(sig.R)
		s := new(big.Int).SetBytes(sig.S)
		if !ecdsa.Verify(k, digest, r, s) {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: signature scheme 0x%04x", ErrUnsupportedAlg, sig.Alg)
}

// PCRDigest computes the digest a quote commits to: digestAlg over the
// concatenation of the selected PCR values, selection by selection, each in
// ascending PCR order. banks maps a bank's hash algorithm to its PCR values
// indexed by PCR number; every selected value must be present and have the
// bank's digest size.
func PCRDigest(digestAlg uint16, sel []PCRSelection, banks map[uint16][][]byte) ([]byte, error) {
	h, err := HashOf(digestAlg)
	if err != nil {
		return nil, err
	}
	hh := h.New()
	for _, s := range sel {
		bh, err := HashOf(s.Hash)
		if err != nil {
			return nil, fmt.Errorf("%w: bank: %w", ErrPCRSelection, err)
		}
		vals := banks[s.Hash]
		for _, i := range s.PCRs() {
			if i >= len(vals) {
				return nil, fmt.Errorf("%w: PCR %d of bank 0x%04x not provided", ErrPCRSelection, i, s.Hash)
			}
			if len(vals[i]) != bh.Size() {
				return nil, fmt.Errorf("%w: PCR %d of bank 0x%04x has %d bytes, want %d", ErrPCRSelection, i, s.Hash, len(vals[i]), bh.Size())
			}
			hh.Write(vals[i])
		}
	}
	return hh.Sum(nil), nil
}

// CheckPCRs recomputes the PCR digest of a's selection from banks with
// digestAlg (the quote's signing hash) and compares it with a.PCRDigest.
func (a *Attest) CheckPCRs(digestAlg uint16, banks map[uint16][][]byte) error {
	d, err := PCRDigest(digestAlg, a.PCRSelect, banks)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(d, a.PCRDigest) != 1 {
		return fmt.Errorf("%w: computed %x, quote has %x", ErrPCRDigest, d, a.PCRDigest)
	}
	return nil
}

// SelectsBank reports whether a's PCR selection is exactly PCRs 0…n-1 of
// the hash bank (and nothing else), so that n supplied PCR values of that
// bank are all covered by the quote's pcrDigest.
func (a *Attest) SelectsBank(hash uint16, n int) bool {
	if len(a.PCRSelect) != 1 || a.PCRSelect[0].Hash != hash {
		return false
	}
	got := a.PCRSelect[0].PCRs()
	if len(got) != n {
		return false
	}
	for i, p := range got {
		if p != i {
			return false
		}
	}
	return true
}
