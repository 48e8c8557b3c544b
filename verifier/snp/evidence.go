package snp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Evidence is parsed snp evidence: the report plus the certificates the
// attester attached (the host's extended-report certificate table).
type Evidence struct {
	Report *Report
	Certs  CertChain
}

// serdeEvidence is the JSON the Rust attester sends:
// {"attestation_report": <sev AttestationReport serde>, "cert_chain": [...] | null}.
type serdeEvidence struct {
	AttestationReport *serdeReport      `json:"attestation_report"`
	CertChain         []json.RawMessage `json:"cert_chain"`
}

// serdeTCB is sev's TcbVersion serde form. fmc is null before Turin.
type serdeTCB struct {
	FMC        *uint8 `json:"fmc"`
	Bootloader *uint8 `json:"bootloader"`
	TEE        *uint8 `json:"tee"`
	SNP        *uint8 `json:"snp"`
	Microcode  *uint8 `json:"microcode"`
}

type serdeVersion struct {
	Major *uint8 `json:"major"`
	Minor *uint8 `json:"minor"`
	Build *uint8 `json:"build"`
}

type serdeSignature struct {
	R byteArray `json:"r"`
	S byteArray `json:"s"`
}

// serdeReport mirrors sev 6.x AttestationReport's serde derive layout.
// Pointers distinguish a missing member (an error, as in serde) from zero.
type serdeReport struct {
	Version          *uint32         `json:"version"`
	GuestSVN         *uint32         `json:"guest_svn"`
	Policy           *uint64         `json:"policy"`
	FamilyID         byteArray       `json:"family_id"`
	ImageID          byteArray       `json:"image_id"`
	VMPL             *uint32         `json:"vmpl"`
	SigAlgo          *uint32         `json:"sig_algo"`
	CurrentTCB       *serdeTCB       `json:"current_tcb"`
	PlatInfo         *uint64         `json:"plat_info"`
	KeyInfo          *uint32         `json:"key_info"`
	ReportData       byteArray       `json:"report_data"`
	Measurement      byteArray       `json:"measurement"`
	HostData         byteArray       `json:"host_data"`
	IDKeyDigest      byteArray       `json:"id_key_digest"`
	AuthorKeyDigest  byteArray       `json:"author_key_digest"`
	ReportID         byteArray       `json:"report_id"`
	ReportIDMA       byteArray       `json:"report_id_ma"`
	ReportedTCB      *serdeTCB       `json:"reported_tcb"`
	CPUIDFamID       *uint8          `json:"cpuid_fam_id"`
	CPUIDModID       *uint8          `json:"cpuid_mod_id"`
	CPUIDStep        *uint8          `json:"cpuid_step"`
	ChipID           byteArray       `json:"chip_id"`
	CommittedTCB     *serdeTCB       `json:"committed_tcb"`
	Current          *serdeVersion   `json:"current"`
	Committed        *serdeVersion   `json:"committed"`
	LaunchTCB        *serdeTCB       `json:"launch_tcb"`
	LaunchMitVector  *uint64         `json:"launch_mit_vector"`
	CurrentMitVector *uint64         `json:"current_mit_vector"`
	Signature        *serdeSignature `json:"signature"`
}

// serdeCert is one sev CertTableEntry: cert_type is a string ("VCEK",
// "VLEK", "ASK", "ARK", "CRL", "Empty") or {"OTHER": "<uuid>"}.
type serdeCert struct {
	CertType json.RawMessage `json:"cert_type"`
	Data     byteArray       `json:"data"`
}

// ParseEvidence decodes snp evidence in any of the accepted encodings:
//
//   - the Rust attester's JSON object {"attestation_report": <sev serde>,
//     "cert_chain": [{"cert_type": "VCEK", "data": [bytes]}, ...] | null};
//     the 1184-byte ABI report is rebuilt from it (see rebuild rules below);
//   - a JSON array of byte values holding the raw report;
//   - a JSON string with the standard-base64 raw report;
//   - the raw 1184 bytes, or their base64 text (standard or URL alphabet,
//     padded or not).
//
// Certificates of types other than VCEK, VLEK, ASK and ARK are ignored; for
// each type the first entry wins (Trustee uses the first VEK it finds).
func ParseEvidence(evidence []byte) (*Evidence, error) {
	trimmed := bytes.TrimSpace(evidence)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty evidence", ErrMalformedEvidence)
	}
	switch trimmed[0] {
	case '{':
		return parseSerdeEvidence(trimmed)
	case '[':
		var raw byteArray
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, fmt.Errorf("%w: report byte array: %v", ErrMalformedEvidence, err)
		}
		return rawEvidence(raw)
	case '"':
		var s string
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return nil, fmt.Errorf("%w: report string: %v", ErrMalformedEvidence, err)
		}
		raw, err := decodeBase64(s)
		if err != nil {
			return nil, err
		}
		return rawEvidence(raw)
	}
	if len(evidence) == ReportSize {
		return rawEvidence(evidence)
	}
	raw, err := decodeBase64(string(trimmed))
	if err != nil {
		return nil, err
	}
	return rawEvidence(raw)
}

func rawEvidence(raw []byte) (*Evidence, error) {
	r, err := ParseReport(raw)
	if err != nil {
		return nil, err
	}
	return &Evidence{Report: r}, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: neither JSON, raw report nor base64", ErrMalformedEvidence)
}

func parseSerdeEvidence(data []byte) (*Evidence, error) {
	var ev serdeEvidence
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvidence, err)
	}
	if ev.AttestationReport == nil {
		return nil, fmt.Errorf("%w: missing attestation_report", ErrMalformedEvidence)
	}
	raw, err := ev.AttestationReport.abiBytes()
	if err != nil {
		return nil, err
	}
	r, err := ParseReport(raw)
	if err != nil {
		return nil, err
	}
	out := &Evidence{Report: r}
	for i, rawEntry := range ev.CertChain {
		var c serdeCert
		if err := json.Unmarshal(rawEntry, &c); err != nil {
			return nil, fmt.Errorf("%w: cert_chain[%d]: %v", ErrMalformedEvidence, i, err)
		}
		var typ string
		if err := json.Unmarshal(c.CertType, &typ); err != nil {
			// {"OTHER": "<uuid>"} and other non-string types are not used.
			continue
		}
		var dst *[]byte
		switch typ {
		case "VCEK":
			dst = &out.Certs.VCEK
		case "VLEK":
			dst = &out.Certs.VLEK
		case "ASK":
			dst = &out.Certs.ASK
		case "ARK":
			dst = &out.Certs.ARK
		default:
			continue
		}
		if *dst == nil && len(c.Data) > 0 {
			*dst = c.Data
		}
	}
	return out, nil
}

// abiBytes rebuilds the 1184-byte ABI report the way the sev crate
// serialises it: reserved bytes are zero; CPUID bytes (required from
// version 3) and mitigation vectors (version 5) are written for the
// versions that have them; the TCB fields use the Turin layout (which must
// carry fmc) for CPUID family 0x1A and the Milan/Genoa layout (which must
// not) otherwise — the same rule ParseReport decodes with.
func (s *serdeReport) abiBytes() ([]byte, error) {
	var missing []string
	need := func(ok bool, name string) {
		if !ok {
			missing = append(missing, name)
		}
	}
	need(s.Version != nil, "version")
	need(s.GuestSVN != nil, "guest_svn")
	need(s.Policy != nil, "policy")
	need(s.VMPL != nil, "vmpl")
	need(s.SigAlgo != nil, "sig_algo")
	need(s.PlatInfo != nil, "plat_info")
	need(s.KeyInfo != nil, "key_info")
	need(s.CurrentTCB != nil, "current_tcb")
	need(s.ReportedTCB != nil, "reported_tcb")
	need(s.CommittedTCB != nil, "committed_tcb")
	need(s.LaunchTCB != nil, "launch_tcb")
	need(s.Current != nil, "current")
	need(s.Committed != nil, "committed")
	need(s.Signature != nil, "signature")
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: attestation_report: missing %v", ErrMalformedEvidence, missing)
	}
	if *s.Version >= 3 && (s.CPUIDFamID == nil || s.CPUIDModID == nil || s.CPUIDStep == nil) {
		return nil, fmt.Errorf("%w: attestation_report: version %d without cpuid_fam_id/cpuid_mod_id/cpuid_step", ErrMalformedEvidence, *s.Version)
	}
	turin := *s.Version >= 3 && turinLayout(*s.Version, *s.CPUIDFamID)

	b := make([]byte, ReportSize)
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], *s.Version)
	le.PutUint32(b[offGuestSVN:], *s.GuestSVN)
	le.PutUint64(b[offPolicy:], *s.Policy)
	le.PutUint32(b[offVMPL:], *s.VMPL)
	le.PutUint32(b[offSigAlgo:], *s.SigAlgo)
	le.PutUint64(b[offPlatformInfo:], *s.PlatInfo)
	le.PutUint32(b[offKeyInfo:], *s.KeyInfo)

	arrays := []struct {
		name string
		v    []uint8
		off  int
		n    int
	}{
		{"family_id", s.FamilyID, offFamilyID, 16},
		{"image_id", s.ImageID, offImageID, 16},
		{"report_data", s.ReportData, offReportData, 64},
		{"measurement", s.Measurement, offMeasurement, 48},
		{"host_data", s.HostData, offHostData, 32},
		{"id_key_digest", s.IDKeyDigest, offIDKeyDigest, 48},
		{"author_key_digest", s.AuthorKeyDigest, offAuthorKeyDigest, 48},
		{"report_id", s.ReportID, offReportID, 32},
		{"report_id_ma", s.ReportIDMA, offReportIDMA, 32},
		{"chip_id", s.ChipID, offChipID, 64},
		{"signature.r", s.Signature.R, offSignatureR, sigComponentSize},
		{"signature.s", s.Signature.S, offSignatureS, sigComponentSize},
	}
	for _, a := range arrays {
		if len(a.v) != a.n {
			return nil, fmt.Errorf("%w: attestation_report.%s has %d bytes, want %d", ErrMalformedEvidence, a.name, len(a.v), a.n)
		}
		copy(b[a.off:], a.v)
	}

	tcbs := []struct {
		name string
		t    *serdeTCB
		off  int
	}{
		{"current_tcb", s.CurrentTCB, offCurrentTCB},
		{"reported_tcb", s.ReportedTCB, offReportedTCB},
		{"committed_tcb", s.CommittedTCB, offCommittedTCB},
		{"launch_tcb", s.LaunchTCB, offLaunchTCB},
	}
	for _, t := range tcbs {
		v, err := t.t.version(turin)
		if err != nil {
			return nil, fmt.Errorf("%w: attestation_report.%s: %v", ErrMalformedEvidence, t.name, err)
		}
		v.encode(b[t.off:])
	}

	if *s.Version >= 3 {
		for _, f := range []struct {
			v   *uint8
			off int
		}{{s.CPUIDFamID, offCPUIDFamID}, {s.CPUIDModID, offCPUIDModID}, {s.CPUIDStep, offCPUIDStep}} {
			if f.v != nil {
				b[f.off] = *f.v
			}
		}
	}
	for _, f := range []struct {
		name string
		v    *serdeVersion
		off  int
	}{{"current", s.Current, offCurrentBuild}, {"committed", s.Committed, offCommittedBuild}} {
		if f.v.Major == nil || f.v.Minor == nil || f.v.Build == nil {
			return nil, fmt.Errorf("%w: attestation_report.%s: missing major/minor/build", ErrMalformedEvidence, f.name)
		}
		b[f.off], b[f.off+1], b[f.off+2] = *f.v.Build, *f.v.Minor, *f.v.Major
	}
	if *s.Version >= 5 {
		if s.LaunchMitVector != nil {
			le.PutUint64(b[offLaunchMitVector:], *s.LaunchMitVector)
		}
		if s.CurrentMitVector != nil {
			le.PutUint64(b[offCurrentMitVector:], *s.CurrentMitVector)
		}
	}
	return b, nil
}

// byteArray is a JSON array of byte values (0–255), decoded without
// reflection: reports carry about 500 of them.
type byteArray []byte

// UnmarshalJSON implements json.Unmarshaler. null leaves the array nil.
func (b *byteArray) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	if len(data) < 2 || data[0] != '[' || data[len(data)-1] != ']' {
		return errors.New("byte array: not a JSON array")
	}
	out := make([]byte, 0, len(data)/3)
	inner := data[1 : len(data)-1]
	i := 0
	skipSpace := func() {
		for i < len(inner) && (inner[i] == ' ' || inner[i] == '\t' || inner[i] == '\n' || inner[i] == '\r') {
			i++
		}
	}
	skipSpace()
	if i == len(inner) {
		*b = out
		return nil
	}
	for {
		skipSpace()
		start, v := i, 0
		for i < len(inner) && inner[i] >= '0' && inner[i] <= '9' {
			v = v*10 + int(inner[i]-'0')
			i++
			if v > 255 {
				return errors.New("byte array: value out of range")
			}
		}
		if i == start || (i-start > 1 && inner[start] == '0') {
			return errors.New("byte array: element is not an integer 0–255")
		}
		out = append(out, byte(v))
		skipSpace()
		if i == len(inner) {
			break
		}
		if inner[i] != ',' {
			return errors.New("byte array: malformed")
		}
		i++
	}
	*b = out
	return nil
}

func (t *serdeTCB) version(turin bool) (TCBVersion, error) {
	if t.Bootloader == nil || t.TEE == nil || t.SNP == nil || t.Microcode == nil {
		return TCBVersion{}, errors.New("missing bootloader/tee/snp/microcode")
	}
	v := TCBVersion{Bootloader: *t.Bootloader, TEE: *t.TEE, SNP: *t.SNP, Microcode: *t.Microcode}
	if turin {
		if t.FMC == nil {
			return TCBVersion{}, errors.New("fmc missing in a Turin TCB")
		}
		v.HasFMC, v.FMC = true, *t.FMC
	} else if t.FMC != nil {
		return TCBVersion{}, errors.New("fmc present in a pre-Turin TCB")
	}
	return v, nil
}
