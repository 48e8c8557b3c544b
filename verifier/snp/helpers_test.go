package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Clocks inside the validity windows of the real vectors.
var (
	// test-vcek.der: 2023-01-24 → 2030-01-24; e2e Genoa VCEK 2025-05-27 → 2032-05-27.
	clock2025 = time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)
	clock2031 = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixed(clock2025)
	}
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// e2eEvidence returns the Genoa evidence split into its report and VCEK.
func e2eEvidence(t testing.TB) (raw []byte, vcek []byte) {
	t.Helper()
	ev, err := ParseEvidence(readTestdata(t, "e2e-evidence-genoa.json"))
	if err != nil {
		t.Fatal(err)
	}
	return ev.Report.Raw(), ev.Certs.VCEK
}

// serdeJSON renders a report (and certificates) in the sev crate's serde
// shape, as the Rust attester sends it.
func serdeJSON(t testing.TB, r *Report, certs []map[string]any) []byte {
	t.Helper()
	tcb := func(v TCBVersion) map[string]any {
		m := map[string]any{"fmc": nil, "bootloader": v.Bootloader, "tee": v.TEE, "snp": v.SNP, "microcode": v.Microcode}
		if v.HasFMC {
			m["fmc"] = v.FMC
		}
		return m
	}
	arr := func(b []byte) []int {
		out := make([]int, len(b))
		for i, c := range b {
			out[i] = int(c)
		}
		return out
	}
	var cpuFam, cpuMod, cpuStep, lmv, cmv any
	if r.Version >= 3 {
		cpuFam, cpuMod, cpuStep = r.CPUIDFamilyID, r.CPUIDModelID, r.CPUIDStepping
	}
	if r.Version >= 5 {
		lmv, cmv = r.LaunchMitVector, r.CurrentMitVector
	}
	rep := map[string]any{
		"version": r.Version, "guest_svn": r.GuestSVN, "policy": uint64(r.Policy),
		"family_id": arr(r.FamilyID[:]), "image_id": arr(r.ImageID[:]), "vmpl": r.VMPL,
		"sig_algo": r.SignatureAlgo, "current_tcb": tcb(r.CurrentTCB), "plat_info": uint64(r.PlatformInfo),
		"key_info": r.KeyInfo, "report_data": arr(r.ReportData[:]), "measurement": arr(r.Measurement[:]),
		"host_data": arr(r.HostData[:]), "id_key_digest": arr(r.IDKeyDigest[:]),
		"author_key_digest": arr(r.AuthorKeyDigest[:]), "report_id": arr(r.ReportID[:]),
		"report_id_ma": arr(r.ReportIDMA[:]), "reported_tcb": tcb(r.ReportedTCB),
		"cpuid_fam_id": cpuFam, "cpuid_mod_id": cpuMod, "cpuid_step": cpuStep,
		"chip_id": arr(r.ChipID[:]), "committed_tcb": tcb(r.CommittedTCB),
		"current":    map[string]any{"major": r.Current.Major, "minor": r.Current.Minor, "build": r.Current.Build},
		"committed":  map[string]any{"major": r.Committed.Major, "minor": r.Committed.Minor, "build": r.Committed.Build},
		"launch_tcb": tcb(r.LaunchTCB), "launch_mit_vector": lmv, "current_mit_vector": cmv,
		"signature": map[string]any{"r": arr(r.Signature.R[:]), "s": arr(r.Signature.S[:])},
	}
	var chain any
	if certs != nil {
		chain = certs
	}
	b, err := json.Marshal(map[string]any{"attestation_report": rep, "cert_chain": chain})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func certEntry(typ string, der []byte) map[string]any {
	data := make([]int, len(der))
	for i, c := range der {
		data[i] = int(c)
	}
	return map[string]any{"cert_type": typ, "data": data}
}

// synthPKI is a synthetic AMD-like hierarchy (RSA-PSS/SHA-384 CAs, P-384
// endorsement keys) for paths no real vector covers: Turin, VLEK, VMPL ≠ 0,
// CRLs, chip-id mismatch.
type synthPKI struct {
	arkKey, askKey, asvkKey *rsa.PrivateKey
	ark, ask, asvk          *x509.Certificate
	bundle                  []byte // PEM ASK, ARK, ASVK
}

var (
	synthOnce sync.Once
	synthVal  *synthPKI
	synthErr  error
)

func synth(t testing.TB) *synthPKI {
	t.Helper()
	synthOnce.Do(func() { synthVal, synthErr = newSynthPKI() })
	if synthErr != nil {
		t.Fatal(synthErr)
	}
	return synthVal
}

func synthName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"Sigil Test"}}
}

func newSynthPKI() (*synthPKI, error) {
	p := &synthPKI{}
	var err error
	for _, k := range []**rsa.PrivateKey{&p.arkKey, &p.askKey, &p.asvkKey} {
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
	}
	nb, na := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: synthName(cn), NotBefore: nb, NotAfter: na,
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			SignatureAlgorithm: x509.SHA384WithRSAPSS,
		}
	}
	arkT := ca(0x10000, "ARK-Turin")
	der, err := x509.CreateCertificate(rand.Reader, arkT, arkT, &p.arkKey.PublicKey, p.arkKey)
	if err != nil {
		return nil, err
	}
	if p.ark, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		dst    **x509.Certificate
		key    *rsa.PrivateKey
		serial int64
		cn     string
	}{{&p.ask, p.askKey, 0x10001, "SEV-Turin"}, {&p.asvk, p.asvkKey, 0x10101, "SEV-VLEK-Turin"}} {
		tmpl := ca(c.serial, c.cn)
		tmpl.MaxPathLenZero = true
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ark, &c.key.PublicKey, p.arkKey)
		if err != nil {
			return nil, err
		}
		if *c.dst, err = x509.ParseCertificate(der); err != nil {
			return nil, err
		}
	}
	for _, c := range []*x509.Certificate{p.ask, p.ark, p.asvk} {
		p.bundle = append(p.bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return p, nil
}

// vekSpec describes a synthetic VCEK/VLEK.
type vekSpec struct {
	kind    KeyKind
	product string
	tcb     TCBVersion
	hwid    []byte // nil for VLEK
	legacy  bool   // hwID as raw bytes instead of an OCTET STRING
}

func mustDER(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// issueVEK creates an endorsement key signed by the ASK (VCEK) or ASVK (VLEK).
func (p *synthPKI) issueVEK(t testing.TB, s vekSpec) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	exts := []pkix.Extension{
		{Id: oidStructVersion, Value: mustDER(1)},
		{Id: oidProductName, Value: mustDER(asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(s.product)})},
		{Id: oidBlSPL, Value: mustDER(int(s.tcb.Bootloader))},
		{Id: oidTeeSPL, Value: mustDER(int(s.tcb.TEE))},
		{Id: oidSnpSPL, Value: mustDER(int(s.tcb.SNP))},
		{Id: oidUcodeSPL, Value: mustDER(int(s.tcb.Microcode))},
	}
	if s.tcb.HasFMC {
		exts = append(exts, pkix.Extension{Id: oidFmcSPL, Value: mustDER(int(s.tcb.FMC))})
	}
	if s.hwid != nil {
		v := mustDER(s.hwid)
		if s.legacy {
			v = s.hwid
		}
		exts = append(exts, pkix.Extension{Id: oidHWID, Value: v})
	}
	parent, parentKey, cn := p.ask, p.askKey, "SEV-VCEK"
	if s.kind == KindVLEK {
		parent, parentKey, cn = p.asvk, p.asvkKey, "SEV-VLEK"
		exts = append(exts, pkix.Extension{Id: oidCSPID, Value: mustDER(asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("sigil-csp")})})
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0), Subject: synthName(cn),
		NotBefore: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		SignatureAlgorithm: x509.SHA384WithRSAPSS, ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// reportSpec describes a synthetic report.
type reportSpec struct {
	version       uint32
	family, model uint8
	signingKey    SigningKey
	vmpl          uint32
	tcb           TCBVersion
	chipID        [64]byte
	reportData    []byte
	hostData      []byte
}

// makeReport builds and signs a raw report.
func makeReport(t testing.TB, s reportSpec, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b := make([]byte, ReportSize)
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], s.version)
	le.PutUint64(b[offPolicy:], 0x30000)
	le.PutUint32(b[offVMPL:], s.vmpl)
	le.PutUint32(b[offSigAlgo:], SignatureAlgoECDSAP384SHA384)
	le.PutUint64(b[offPlatformInfo:], 0x25)
	le.PutUint32(b[offKeyInfo:], uint32(s.signingKey)<<2)
	copy(b[offReportData:offReportData+64], s.reportData)
	copy(b[offHostData:offHostData+32], s.hostData)
	for i := range 48 {
		b[offMeasurement+i] = byte(i)
	}
	for _, off := range []int{offCurrentTCB, offReportedTCB, offCommittedTCB, offLaunchTCB} {
		s.tcb.encode(b[off:])
	}
	b[offCPUIDFamID], b[offCPUIDModID], b[offCPUIDStep] = s.family, s.model, 1
	copy(b[offChipID:], s.chipID[:])
	b[offCurrentMajor], b[offCurrentMinor], b[offCurrentBuild] = 1, 58, 3
	b[offCommittedMajor], b[offCommittedMinor], b[offCommittedBuild] = 1, 58, 3
	if s.version >= 5 {
		le.PutUint64(b[offLaunchMitVector:], 3)
		le.PutUint64(b[offCurrentMitVector:], 7)
	}
	signReport(t, b, key)
	return b
}

// signReport (re)signs raw in place.
func signReport(t testing.TB, raw []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	digest := sha512.Sum384(raw[:SignedSize])
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	putLE := func(dst []byte, n *big.Int) {
		clear(dst)
		be := n.Bytes()
		for i, c := range be {
			dst[len(be)-1-i] = c
		}
	}
	putLE(raw[offSignatureR:offSignatureR+sigComponentSize], r)
	putLE(raw[offSignatureS:offSignatureS+sigComponentSize], s)
}

func turinChipID() [64]byte {
	var id [64]byte
	for i := range id {
		id[i] = byte(0xA0 + i)
	}
	return id
}

var turinTCB = TCBVersion{HasFMC: true, FMC: 1, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 0x48}
