package tdx

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// OIDSGXExtensions is the Intel SGX extension of PCK certificates.
var OIDSGXExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}

// SGX types (PCK certificate extension 1.2.840.113741.1.13.1.5).
const (
	SGXTypeStandard              = 0
	SGXTypeScalable              = 1
	SGXTypeScalableWithIntegrity = 2
)

// PCKExtensions is the decoded Intel SGX extension of a PCK certificate
// ("Intel SGX PCK Certificate and Certificate Revocation List Profile
// Specification"). Optional members that the certificate does not carry are
// left nil.
type PCKExtensions struct {
	// PPID is the platform provisioning ID (16 bytes).
	PPID []byte
	// TCBComponents are the 16 SGX TCB component SVNs (CPUSVN components).
	TCBComponents [16]byte
	// PCESVN is the PCE security version number.
	PCESVN uint16
	// CPUSVN is the CPU security version number (16 bytes).
	CPUSVN [16]byte
	// PCEID is the PCE identifier (2 bytes).
	PCEID []byte
	// FMSPC is the Family-Model-Stepping-Platform-CustomSKU (6 bytes).
	FMSPC []byte
	// SGXType is 0 (Standard), 1 (Scalable) or 2 (Scalable with integrity).
	SGXType int
	// PlatformInstanceID is the platform instance id as stored in the
	// certificate (16 bytes); nil for Processor-CA certificates.
	PlatformInstanceID []byte
	// DynamicPlatform, CachedKeys and SMTEnabled are the configuration
	// flags; nil when absent.
	DynamicPlatform *bool
	CachedKeys      *bool
	SMTEnabled      *bool
}

// oidEntry is one SEQUENCE { OBJECT IDENTIFIER, value } of the extension.
type oidEntry struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// sgxArcs returns the arcs of id after the OIDSGXExtensions prefix, or nil
// when id is not below it.
func sgxArcs(id asn1.ObjectIdentifier) []int {
	if len(id) <= len(OIDSGXExtensions) || !id[:len(OIDSGXExtensions)].Equal(OIDSGXExtensions) {
		return nil
	}
	return id[len(OIDSGXExtensions):]
}

func parseEntries(der []byte, what string) ([]oidEntry, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(der, &raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPCKExtension, what, err)
	}
	if len(rest) != 0 || raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence || !raw.IsCompound {
		return nil, fmt.Errorf("%w: %s: not a single SEQUENCE", ErrPCKExtension, what)
	}
	var out []oidEntry
	b := raw.Bytes
	for len(b) > 0 {
		var e oidEntry
		b, err = asn1.Unmarshal(b, &e)
		if err != nil {
			return nil, fmt.Errorf("%w: %s entry: %v", ErrPCKExtension, what, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func octets(v asn1.RawValue, n int, what string) ([]byte, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || v.IsCompound {
		return nil, fmt.Errorf("%w: %s is not an OCTET STRING", ErrPCKExtension, what)
	}
	if n > 0 && len(v.Bytes) != n {
		return nil, fmt.Errorf("%w: %s has %d bytes, want %d", ErrPCKExtension, what, len(v.Bytes), n)
	}
	return append([]byte(nil), v.Bytes...), nil
}

// integer decodes a small non-negative INTEGER or ENUMERATED.
func integer(v asn1.RawValue, tag, max int, what string) (int, error) {
	if v.Class != asn1.ClassUniversal || v.Tag != tag || v.IsCompound {
		return 0, fmt.Errorf("%w: %s has tag %d, want %d", ErrPCKExtension, what, v.Tag, tag)
	}
	var n int64
	var err error
	if tag == asn1.TagEnum {
		var e asn1.Enumerated
		_, err = asn1.Unmarshal(v.FullBytes, &e)
		n = int64(e)
	} else {
		_, err = asn1.Unmarshal(v.FullBytes, &n)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrPCKExtension, what, err)
	}
	if n < 0 || n > int64(max) {
		return 0, fmt.Errorf("%w: %s value %d out of range", ErrPCKExtension, what, n)
	}
	return int(n), nil
}

func boolean(v asn1.RawValue, what string) (*bool, error) {
	var b bool
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagBoolean {
		return nil, fmt.Errorf("%w: %s is not a BOOLEAN", ErrPCKExtension, what)
	}
	if _, err := asn1.Unmarshal(v.FullBytes, &b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPCKExtension, what, err)
	}
	return &b, nil
}

// ParsePCKExtensions decodes the SGX extension (OID 1.2.840.113741.1.13.1)
// of a PCK certificate. PPID, TCB, PCE-ID, FMSPC and SGX type are required;
// the platform instance id and configuration flags are optional (absent in
// Processor-CA certificates). Unknown entries are ignored.
func ParsePCKExtensions(cert *x509.Certificate) (*PCKExtensions, error) {
	var der []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSGXExtensions) {
			if der != nil {
				return nil, fmt.Errorf("%w: duplicate SGX extension", ErrPCKExtension)
			}
			der = e.Value
		}
	}
	if der == nil {
		return nil, fmt.Errorf("%w: certificate has no SGX extension", ErrPCKExtension)
	}
	return parseSGXExtension(der)
}

// parseSGXExtension decodes the DER value of the SGX extension.
func parseSGXExtension(der []byte) (*PCKExtensions, error) {
	entries, err := parseEntries(der, "SGX extension")
	if err != nil {
		return nil, err
	}
	x := &PCKExtensions{}
	var haveTCB, haveType bool
	for _, e := range entries {
		arcs := sgxArcs(e.ID)
		if len(arcs) != 1 {
			continue
		}
		switch arcs[0] {
		case 1:
			x.PPID, err = octets(e.Value, 16, "PPID")
		case 2:
			err = parseTCB(e.Value, x)
			haveTCB = err == nil
		case 3:
			x.PCEID, err = octets(e.Value, 2, "PCE-ID")
		case 4:
			x.FMSPC, err = octets(e.Value, 6, "FMSPC")
		case 5:
			x.SGXType, err = integer(e.Value, asn1.TagEnum, 255, "SGX type")
			haveType = err == nil
		case 6:
			x.PlatformInstanceID, err = octets(e.Value, 16, "platform instance id")
		case 7:
			err = parseConfiguration(e.Value, x)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case x.PPID == nil:
		return nil, fmt.Errorf("%w: PPID missing", ErrPCKExtension)
	case !haveTCB:
		return nil, fmt.Errorf("%w: TCB missing", ErrPCKExtension)
	case x.PCEID == nil:
		return nil, fmt.Errorf("%w: PCE-ID missing", ErrPCKExtension)
	case x.FMSPC == nil:
		return nil, fmt.Errorf("%w: FMSPC missing", ErrPCKExtension)
	case !haveType:
		return nil, fmt.Errorf("%w: SGX type missing", ErrPCKExtension)
	}
	return x, nil
}

func parseTCB(v asn1.RawValue, x *PCKExtensions) error {
	entries, err := parseEntries(v.FullBytes, "TCB")
	if err != nil {
		return err
	}
	seen := 0
	for _, e := range entries {
		arcs := sgxArcs(e.ID)
		if len(arcs) != 2 || arcs[0] != 2 {
			continue
		}
		switch n := arcs[1]; {
		case n >= 1 && n <= 16:
			c, err := integer(e.Value, asn1.TagInteger, 255, fmt.Sprintf("TCB component %d", n))
			if err != nil {
				return err
			}
			x.TCBComponents[n-1] = byte(c)
			seen |= 1 << (n - 1)
		case n == 17:
			c, err := integer(e.Value, asn1.TagInteger, 0xffff, "PCESVN")
			if err != nil {
				return err
			}
			x.PCESVN = uint16(c)
			seen |= 1 << 16
		case n == 18:
			b, err := octets(e.Value, 16, "CPUSVN")
			if err != nil {
				return err
			}
			copy(x.CPUSVN[:], b)
			seen |= 1 << 17
		}
	}
	if seen != 1<<18-1 {
		return fmt.Errorf("%w: TCB lacks components (have mask %#x)", ErrPCKExtension, seen)
	}
	return nil
}

func parseConfiguration(v asn1.RawValue, x *PCKExtensions) error {
	entries, err := parseEntries(v.FullBytes, "configuration")
	if err != nil {
		return err
	}
	for _, e := range entries {
		arcs := sgxArcs(e.ID)
		if len(arcs) != 2 || arcs[0] != 7 {
			continue
		}
		switch arcs[1] {
		case 1:
			x.DynamicPlatform, err = boolean(e.Value, "dynamic platform")
		case 2:
			x.CachedKeys, err = boolean(e.Value, "cached keys")
		case 3:
			x.SMTEnabled, err = boolean(e.Value, "SMT enabled")
		}
		if err != nil {
			return err
		}
	}
	return nil
}
