package snp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
)

func TestEmbeddedRoots(t *testing.T) {
	for _, p := range Products {
		t.Run(string(p), func(t *testing.T) {
			b, err := DefaultRootBundle(p)
			if err != nil {
				t.Fatal(err)
			}
			pc, err := ParseRootBundle(b)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"SEV-" + string(p), "ARK-" + string(p), "SEV-VLEK-" + string(p)}
			got := []string{pc.ASK.Subject.CommonName, pc.ARK.Subject.CommonName, pc.ASVK.Subject.CommonName}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("common names %v, want %v", got, want)
			}
		})
	}
	// ARK and ASK swapped: the bundle must be rejected.
	b, _ := DefaultRootBundle(Milan)
	blocks := strings.SplitAfter(string(b), "-----END CERTIFICATE-----\n")
	if _, err := ParseRootBundle([]byte(blocks[1] + blocks[0] + blocks[2])); err == nil {
		t.Fatal("swapped ASK/ARK accepted")
	}
	if _, err := ParseRootBundle([]byte(blocks[0])); err == nil {
		t.Fatal("one-certificate bundle accepted")
	}
}

func TestProductFromCPUID(t *testing.T) {
	tests := []struct {
		family, model uint8
		want          Product
	}{
		{0x19, 0x00, Milan}, {0x19, 0x01, Milan}, {0x19, 0x0F, Milan},
		{0x19, 0x10, Genoa}, {0x19, 0x11, Genoa}, {0x19, 0x1F, Genoa},
		{0x19, 0xA0, Genoa}, {0x19, 0xAE, Genoa},
		{0x19, 0x20, ""}, {0x19, 0x9F, ""}, {0x19, 0xAF, ""},
		{0x1A, 0x00, Turin}, {0x1A, 0x02, Turin}, {0x1A, 0x11, Turin}, {0x1A, 0x12, ""},
		{0x17, 0x31, ""}, {0x00, 0x00, ""},
	}
	for _, tc := range tests {
		got, err := productFromCPUID(tc.family, tc.model)
		if tc.want == "" {
			if !errors.Is(err, ErrUnknownProduct) {
				t.Errorf("family %#x model %#x: got %q, %v; want ErrUnknownProduct", tc.family, tc.model, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("family %#x model %#x: got %q, %v; want %s", tc.family, tc.model, got, err, tc.want)
		}
	}
}

// test-report.bin + test-vcek.der: the README's conclusions.
func TestTestReportMilanV2(t *testing.T) {
	raw := readTestdata(t, "test-report.bin")
	vcek := readTestdata(t, "test-vcek.der")
	r, err := ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 2 || r.VMPL != 0 || r.Policy != 0x3001f || r.SigningKey() != SigningKeyVCEK {
		t.Fatalf("version %d vmpl %d policy %#x signing key %s", r.Version, r.VMPL, uint64(r.Policy), r.SigningKey())
	}
	if r.Current.String() != "1.52.4" {
		t.Errorf("firmware %s, want 1.52.4", r.Current)
	}
	if got := r.ReportedTCB.Uint64(); got != 0x7308000000000003 {
		t.Errorf("reported TCB %#x", got)
	}
	if r.ReportedTCB != (TCBVersion{Bootloader: 3, TEE: 0, SNP: 8, Microcode: 115}) {
		t.Errorf("reported TCB %+v", r.ReportedTCB)
	}
	if r.CPUIDFamilyID != 0 || r.CPUIDModelID != 0 {
		t.Errorf("v2 report has CPUID %#x/%#x", r.CPUIDFamilyID, r.CPUIDModelID)
	}
	if _, err := r.Product(); !errors.Is(err, ErrUnknownProduct) {
		t.Errorf("Product() of a v2 report: %v", err)
	}
	checkPrefix := func(name string, b []byte, prefix, suffix string) {
		t.Helper()
		h := hex.EncodeToString(b)
		if !strings.HasPrefix(h, prefix) || !strings.HasSuffix(h, suffix) {
			t.Errorf("%s = %s, want %s…%s", name, h, prefix, suffix)
		}
	}
	checkPrefix("chip_id", r.ChipID[:], "c38427a3", "e477524e")
	checkPrefix("measurement", r.Measurement[:], "a1f39304", "50d3d38c")
	checkPrefix("report_data", r.ReportData[:], "ec6c52d7", "400ad7e2"+strings.Repeat("00", 32))
	if r.HostData != [32]byte{} {
		t.Error("host_data not zero")
	}

	cert, err := x509.ParseCertificate(vcek)
	if err != nil {
		t.Fatal(err)
	}
	if cert.SerialNumber.Sign() != 0 {
		t.Fatalf("serial %v, want 0", cert.SerialNumber)
	}
	info, err := ParseVEKExtensions(cert)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != KindVCEK || info.ProductName != "Milan-B0" || info.TCB != r.ReportedTCB || !bytes.Equal(info.HWID, r.ChipID[:]) {
		t.Fatalf("VCEK extensions %+v", info)
	}

	v := newVerifier(t, Options{})
	got, err := v.VerifyReport(context.Background(), raw, CertChain{VCEK: vcek})
	if err != nil {
		t.Fatalf("VerifyReport: %v", err)
	}
	if got.Measurement != r.Measurement {
		t.Fatal("returned report differs")
	}
	// The VCEK as PEM works too.
	pemVCEK := []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(vcek) + "\n-----END CERTIFICATE-----\n")
	if _, err := v.VerifyReport(context.Background(), raw, CertChain{VCEK: pemVCEK}); err != nil {
		t.Fatalf("VerifyReport with PEM VCEK: %v", err)
	}

	// A clock after the VCEK's notAfter (2030-01-24) fails the chain.
	late := newVerifier(t, Options{Now: fixed(clock2031)})
	if _, err := late.VerifyReport(context.Background(), raw, CertChain{VCEK: vcek}); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("2031 clock: %v, want ErrCertExpired", err)
	}
	early := newVerifier(t, Options{Now: fixed(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC))})
	if _, err := early.VerifyReport(context.Background(), raw, CertChain{VCEK: vcek}); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("2022 clock: %v, want ErrCertExpired", err)
	}
}

// The Verifier keeps Trustee's REPORT_VERSION_MIN = 3.
func TestVerifierRejectsV2(t *testing.T) {
	raw := readTestdata(t, "test-report.bin")
	vcek := readTestdata(t, "test-vcek.der")
	r, _ := ParseReport(raw)
	asJSON := serdeJSON(t, r, []map[string]any{certEntry("VCEK", vcek)})
	byteArray, _ := json.Marshal(func() []int {
		out := make([]int, len(raw))
		for i, c := range raw {
			out[i] = int(c)
		}
		return out
	}())
	v := newVerifier(t, Options{})
	for name, ev := range map[string][]byte{
		"serde JSON": asJSON, "raw": raw, "byte array": byteArray,
		"base64": []byte(base64.StdEncoding.EncodeToString(raw)),
	} {
		_, err := v.Verify(context.Background(), ev, verifier.Expected{})
		if !errors.Is(err, ErrReportVersion) || !strings.Contains(err.Error(), "report version too old") {
			t.Errorf("%s: %v, want ErrReportVersion", name, err)
		}
	}
	// Configurable: with MinReportVersion 2 the same evidence verifies.
	v2 := newVerifier(t, Options{MinReportVersion: 2})
	res, err := v2.Verify(context.Background(), asJSON, verifier.Expected{ReportData: r.ReportData[:48]})
	if err != nil {
		t.Fatalf("MinReportVersion 2: %v", err)
	}
	if res[0].Claims["reported_tcb_microcode"] != json.Number("115") {
		t.Fatalf("claims %v", res[0].Claims)
	}
	// Too new.
	v3 := newVerifier(t, Options{MinReportVersion: 2, MaxReportVersion: 2})
	ev, _ := ParseEvidence(readTestdata(t, "e2e-evidence-genoa.json"))
	if _, err := v3.Verify(context.Background(), readTestdata(t, "e2e-evidence-genoa.json"), verifier.Expected{}); !errors.Is(err, ErrReportVersionNew) {
		t.Fatalf("max version 2 with a v%d report: %v", ev.Report.Version, err)
	}
	if _, err := New(Options{MinReportVersion: 5, MaxReportVersion: 3}); err == nil {
		t.Fatal("min > max accepted")
	}
}

// Trustee's negative VCEKs: extensions parse, chain fails.
func TestInvalidVCEKs(t *testing.T) {
	dummy := make([]byte, 64)
	for i := range dummy {
		dummy[i] = byte(i)
	}
	tests := []struct {
		file string
		tcb  TCBVersion
	}{
		{"test-vcek-invalid-legacy.der", TCBVersion{Bootloader: 3, SNP: 10, Microcode: 169}},
		{"test-vcek-invalid-new.der", TCBVersion{Microcode: 30}},
	}
	raw := readTestdata(t, "test-report.bin")
	v := newVerifier(t, Options{})
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			der := readTestdata(t, tc.file)
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			info, err := ParseVEKExtensions(cert)
			if err != nil {
				t.Fatal(err)
			}
			if info.ProductName != "Milan-B0" || info.TCB != tc.tcb || !bytes.Equal(info.HWID, dummy) {
				t.Fatalf("extensions %+v", info)
			}
			if _, err := v.VerifyReport(context.Background(), raw, CertChain{VCEK: der}); !errors.Is(err, ErrCertChain) {
				t.Fatalf("VerifyReport: %v, want ErrCertChain", err)
			}
		})
	}
}

func TestE2EGenoa(t *testing.T) {
	evJSON := readTestdata(t, "e2e-evidence-genoa.json")
	ev, err := ParseEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Report
	if r.Version != 3 || r.CPUIDFamilyID != 0x19 || r.CPUIDModelID != 0xA0 || r.CPUIDStepping != 2 {
		t.Fatalf("version %d cpuid %#x/%#x/%d", r.Version, r.CPUIDFamilyID, r.CPUIDModelID, r.CPUIDStepping)
	}
	if p, err := r.Product(); err != nil || p != Genoa {
		t.Fatalf("product %q, %v", p, err)
	}
	if r.Policy != 0x30000 || r.Current.String() != "1.55.40" || r.VMPL != 0 {
		t.Fatalf("policy %#x firmware %s vmpl %d", uint64(r.Policy), r.Current, r.VMPL)
	}
	if r.ReportedTCB != (TCBVersion{Bootloader: 10, TEE: 0, SNP: 23, Microcode: 25}) {
		t.Fatalf("reported TCB %+v", r.ReportedTCB)
	}
	if !strings.HasPrefix(hex.EncodeToString(r.ChipID[:]), "371c55d6") {
		t.Fatal("chip id")
	}
	cert, err := x509.ParseCertificate(ev.Certs.VCEK)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseVEKExtensions(cert)
	if err != nil {
		t.Fatal(err)
	}
	if info.ProductName != "Genoa" || info.TCB != r.ReportedTCB || !bytes.Equal(info.HWID, r.ChipID[:]) {
		t.Fatalf("VCEK %+v", info)
	}

	v := newVerifier(t, Options{})
	exp := verifier.Expected{ReportData: r.ReportData[:], InitDataDigest: make([]byte, 32)}
	res, err := v.Verify(context.Background(), evJSON, exp)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res) != 1 || res[0].Class != "cpu" {
		t.Fatalf("results %+v", res)
	}
	want := map[string]any{
		"policy_abi_major": json.Number("0"), "policy_abi_minor": json.Number("0"),
		"policy_smt_allowed": true, "policy_migrate_ma": false, "policy_debug_allowed": false,
		"policy_single_socket": false, "reported_tcb_bootloader": json.Number("10"),
		"reported_tcb_tee": json.Number("0"), "reported_tcb_snp": json.Number("23"),
		"reported_tcb_microcode": json.Number("25"), "platform_tsme_enabled": false,
		"platform_smt_enabled": true,
		"measurement":          "6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4ae62a36d75c837974dd50b315506e73e",
		"report_data":          "7e7320889600c7ac133aea7b896c51f41026002982292a7369559796999c1bf929eef3ff23c46e858f0b1982f9a92b17c51b578d958cde6b0c92978f150cf9b0",
		"init_data":            strings.Repeat("00", 32),
		"chip_id":              "371c55d6d15cb50f16dc31d39a24e300caaabff4431e841111429b73ec45ad67ea6e687ffae7bf84b54a5d0e6d79b3ef6ff0bd8b4cff94c2163af5c5de8718e8",
		"crl_status":           CRLSkipped,
	}
	if len(res[0].Claims) != len(want) {
		t.Errorf("%d claims, want %d: %v", len(res[0].Claims), len(want), res[0].Claims)
	}
	for k, w := range want {
		if g := res[0].Claims[k]; g != w {
			t.Errorf("claim %s = %#v, want %#v", k, g, w)
		}
	}
	// Claims must marshal to JSON (the AS hoists report_data/init_data).
	if _, err := json.Marshal(res[0].Claims); err != nil {
		t.Fatal(err)
	}
	// Regularisation: a longer expectation is truncated to 64 bytes.
	long := append(r.ReportData[:], 1, 2, 3)
	if _, err := v.Verify(context.Background(), evJSON, verifier.Expected{ReportData: long}); err != nil {
		t.Fatalf("truncated report data: %v", err)
	}
	// VerifyReport on the rebuilt raw bytes gives the same answer.
	if _, err := v.VerifyReport(context.Background(), r.Raw(), ev.Certs); err != nil {
		t.Fatalf("VerifyReport: %v", err)
	}
}

func TestBindingMismatches(t *testing.T) {
	evJSON := readTestdata(t, "e2e-evidence-genoa.json")
	raw, _ := e2eEvidence(t)
	r, _ := ParseReport(raw)
	v := newVerifier(t, Options{})
	wrongRD := bytes.Clone(r.ReportData[:])
	wrongRD[5] ^= 1
	tests := []struct {
		name string
		exp  verifier.Expected
		want error
	}{
		{"nothing checked", verifier.Expected{}, nil},
		{"wrong report data", verifier.Expected{ReportData: wrongRD}, ErrReportDataMismatch},
		{"short report data", verifier.Expected{ReportData: r.ReportData[:48]}, ErrReportDataMismatch},
		{"empty report data", verifier.Expected{ReportData: []byte{}}, ErrReportDataMismatch},
		{"zero host data, short", verifier.Expected{InitDataDigest: []byte{0, 0}}, nil},
		{"wrong host data", verifier.Expected{InitDataDigest: bytes.Repeat([]byte{0xab}, 32)}, ErrHostDataMismatch},
		{"wrong host data, 48 bytes", verifier.Expected{InitDataDigest: append(make([]byte, 32), 1)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), evJSON, tc.exp)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// Tampered copies of the real vectors.
func TestTampering(t *testing.T) {
	genoaRaw, genoaVCEK := e2eEvidence(t)
	milanRaw := readTestdata(t, "test-report.bin")
	milanVCEK := readTestdata(t, "test-vcek.der")
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	setVMPL := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[offVMPL] = 1
		return c
	}
	tests := []struct {
		name  string
		raw   []byte
		certs CertChain
		want  error
	}{
		{"genoa ok", genoaRaw, CertChain{VCEK: genoaVCEK}, nil},
		{"milan ok", milanRaw, CertChain{VCEK: milanVCEK}, nil},
		{"measurement bit", flip(genoaRaw, offMeasurement+3), CertChain{VCEK: genoaVCEK}, ErrSignature},
		{"report_data bit", flip(milanRaw, offReportData), CertChain{VCEK: milanVCEK}, ErrSignature},
		{"host_data bit", flip(genoaRaw, offHostData+31), CertChain{VCEK: genoaVCEK}, ErrSignature},
		{"last signed byte", flip(genoaRaw, SignedSize-1), CertChain{VCEK: genoaVCEK}, ErrSignature},
		{"reported TCB (signed first)", flip(milanRaw, offReportedTCB+7), CertChain{VCEK: milanVCEK}, ErrSignature},
		// VMPL ≠ 0 cannot be synthesised on a real report without breaking
		// its signature: the signature check fails first.
		{"vmpl 1", setVMPL(genoaRaw), CertChain{VCEK: genoaVCEK}, ErrSignature},
		{"signature r", flip(genoaRaw, offSignatureR+10), CertChain{VCEK: genoaVCEK}, ErrSignature},
		{"signature s", flip(milanRaw, offSignatureS), CertChain{VCEK: milanVCEK}, ErrSignature},
		{"vcek byte (as Trustee: [42]+1)", genoaRaw, CertChain{VCEK: func() []byte { c := bytes.Clone(genoaVCEK); c[42]++; return c }()}, ErrCertChain},
		{"vcek signature byte", genoaRaw, CertChain{VCEK: flip(genoaVCEK, len(genoaVCEK)-5)}, ErrCertChain},
		{"vcek truncated", genoaRaw, CertChain{VCEK: genoaVCEK[:100]}, ErrCertChain},
		// Another chip's VCEK: a Milan VCEK for a Genoa report.
		{"milan vcek for genoa report", genoaRaw, CertChain{VCEK: milanVCEK}, ErrProductMismatch},
		// A v2 report takes its product from the VCEK: Genoa chain OK,
		// but the key did not sign it.
		{"genoa vcek for milan v2 report", milanRaw, CertChain{VCEK: genoaVCEK}, ErrSignature},
		{"no vcek, no source", genoaRaw, CertChain{}, ErrNoVEK},
		{"vcek in VLEK slot", genoaRaw, CertChain{VLEK: genoaVCEK}, ErrNoVEK},
		{"signature algo", func() []byte { c := bytes.Clone(genoaRaw); c[offSigAlgo] = 2; return c }(), CertChain{VCEK: genoaVCEK}, ErrSignatureAlgorithm},
		{"signing key 7", func() []byte { c := bytes.Clone(genoaRaw); c[offKeyInfo] = 7 << 2; return c }(), CertChain{VCEK: genoaVCEK}, ErrSigningKey},
		{"cpuid unknown", func() []byte { c := bytes.Clone(genoaRaw); c[offCPUIDModID] = 0x50; return c }(), CertChain{VCEK: genoaVCEK}, ErrUnknownProduct},
		{"trailing byte", append(bytes.Clone(genoaRaw), 0), CertChain{VCEK: genoaVCEK}, ErrMalformedReport},
	}
	v := newVerifier(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.VerifyReport(context.Background(), tc.raw, tc.certs)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSuppliedCAs(t *testing.T) {
	raw, vcek := e2eEvidence(t)
	genoa, _ := DefaultRootBundle(Genoa)
	gpc, _ := ParseRootBundle(genoa)
	milan, _ := DefaultRootBundle(Milan)
	mpc, _ := ParseRootBundle(milan)
	tests := []struct {
		name  string
		certs CertChain
		want  error
	}{
		{"genoa ASK and ARK", CertChain{VCEK: vcek, ASK: gpc.ASK.Raw, ARK: gpc.ARK.Raw}, nil},
		{"milan ARK", CertChain{VCEK: vcek, ARK: mpc.ARK.Raw}, ErrUntrustedRoot},
		{"milan ASK", CertChain{VCEK: vcek, ASK: mpc.ASK.Raw}, ErrCertChain},
		{"ASVK as ASK", CertChain{VCEK: vcek, ASK: gpc.ASVK.Raw}, ErrCertChain},
		{"garbage ASK", CertChain{VCEK: vcek, ASK: []byte("junk")}, ErrCertChain},
	}
	v := newVerifier(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second pass uses the caches
				_, err := v.VerifyReport(context.Background(), raw, tc.certs)
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			}
		})
	}
	// Evidence cert_chain entries with ASK/ARK types are used.
	ev := serdeJSON(t, mustParse(t, raw), []map[string]any{
		{"cert_type": map[string]string{"OTHER": "c0b406a4-a803-4952-9743-3fb6014cd0ae"}, "data": []int{1, 2}},
		certEntry("ARK", gpc.ARK.Raw), certEntry("ASK", gpc.ASK.Raw), certEntry("VCEK", vcek),
		certEntry("VCEK", readTestdata(t, "test-vcek.der")), // first VCEK wins
	})
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); err != nil {
		t.Fatalf("Verify with full chain: %v", err)
	}
}

func mustParse(t testing.TB, raw []byte) *Report {
	t.Helper()
	r, err := ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Synthetic hierarchy: Turin layout, VLEK, VMPL, chip-id mismatch.
func TestSyntheticTurin(t *testing.T) {
	p := synth(t)
	chip := turinChipID()
	vcekKey, vcekDER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: turinTCB, hwid: chip[:]})
	vlekKey, vlekDER := p.issueVEK(t, vekSpec{kind: KindVLEK, product: "Turin", tcb: turinTCB})
	other := chip
	other[0] ^= 0xff
	_, otherDER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: turinTCB, hwid: other[:], legacy: true})
	hw8Key, hw8DER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: turinTCB, hwid: chip[:8]})
	noFMC := turinTCB
	noFMC.HasFMC = false
	_, noFMCDER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: noFMC, hwid: chip[:]})
	badFMC := turinTCB
	badFMC.FMC++

	rd := bytes.Repeat([]byte{0x5a}, 48)
	hd := bytes.Repeat([]byte{0xc3}, 32)
	base := reportSpec{version: 3, family: 0x1A, model: 0x02, tcb: turinTCB, chipID: chip, reportData: rd, hostData: hd}
	vcekReport := makeReport(t, base, vcekKey)
	hw8Report := makeReport(t, base, hw8Key)
	v5 := base
	v5.version = 5
	v5Report := makeReport(t, v5, vcekKey)
	vl := base
	vl.signingKey = SigningKeyVLEK
	vlekReport := makeReport(t, vl, vlekKey)
	vm := base
	vm.vmpl = 2
	vmplReport := makeReport(t, vm, vcekKey)

	r := mustParse(t, vcekReport)
	if r.ReportedTCB != turinTCB || r.ReportedTCB.Uint64() != 0x4800000004030201 {
		t.Fatalf("Turin TCB %+v %#x", r.ReportedTCB, r.ReportedTCB.Uint64())
	}
	if r5 := mustParse(t, v5Report); r5.LaunchMitVector != 3 || r5.CurrentMitVector != 7 {
		t.Fatalf("mitigation vectors %d %d", r5.LaunchMitVector, r5.CurrentMitVector)
	}

	v := newVerifier(t, Options{Roots: map[Product][]byte{Turin: p.bundle}})
	exp := verifier.Expected{ReportData: rd, InitDataDigest: hd}
	verify := func(raw []byte, certs []map[string]any) error {
		_, err := v.Verify(context.Background(), serdeJSON(t, mustParse(t, raw), certs), exp)
		return err
	}
	tests := []struct {
		name  string
		raw   []byte
		certs []map[string]any
		want  error
	}{
		{"vcek", vcekReport, []map[string]any{certEntry("VCEK", vcekDER)}, nil},
		{"v5 vcek", v5Report, []map[string]any{certEntry("VCEK", vcekDER)}, nil},
		{"8-byte hwID", hw8Report, []map[string]any{certEntry("VCEK", hw8DER)}, nil},
		{"vlek", vlekReport, []map[string]any{certEntry("VLEK", vlekDER)}, nil},
		{"vlek with ASVK supplied", vlekReport, []map[string]any{certEntry("VLEK", vlekDER), certEntry("ASK", p.asvk.Raw)}, nil},
		{"vlek report, vcek given", vlekReport, []map[string]any{certEntry("VCEK", vcekDER)}, ErrNoVEK},
		{"vlek in VCEK slot", vcekReport, []map[string]any{certEntry("VCEK", vlekDER)}, ErrNoVEK},
		{"vlek report, no VLEK", vlekReport, nil, ErrNoVEK},
		{"other chip's vcek", vcekReport, []map[string]any{certEntry("VCEK", otherDER)}, ErrSignature},
		{"vmpl 2", vmplReport, []map[string]any{certEntry("VCEK", vcekDER)}, ErrVMPL},
		{"vcek without fmcSPL", vcekReport, []map[string]any{certEntry("VCEK", noFMCDER)}, ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tc.raw, tc.certs)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Same key, other chip id / TCB in the certificate: sign the report
	// with the key of a certificate whose extensions disagree.
	otherKey, otherChipDER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: turinTCB, hwid: other[:]})
	if err := verify(makeReport(t, base, otherKey), []map[string]any{certEntry("VCEK", otherChipDER)}); !errors.Is(err, ErrChipIDMismatch) {
		t.Fatalf("chip id mismatch: %v", err)
	}
	fmcKey, fmcDER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: badFMC, hwid: chip[:]})
	if err := verify(makeReport(t, base, fmcKey), []map[string]any{certEntry("VCEK", fmcDER)}); !errors.Is(err, ErrTCBMismatch) {
		t.Fatalf("fmc mismatch: %v", err)
	}
	noFMCKey, noFMCDER2 := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: noFMC, hwid: chip[:]})
	if err := verify(makeReport(t, base, noFMCKey), []map[string]any{certEntry("VCEK", noFMCDER2)}); !errors.Is(err, ErrTCBMismatch) {
		t.Fatalf("Turin VCEK without fmcSPL: %v", err)
	}
	// VerifyReport leaves VMPL to the caller; CheckBinding applies it.
	vr, err := v.VerifyReport(context.Background(), vmplReport, CertChain{VCEK: vcekDER})
	if err != nil {
		t.Fatalf("VerifyReport with VMPL 2: %v", err)
	}
	if err := CheckBinding(vr, verifier.Expected{}); !errors.Is(err, ErrVMPL) {
		t.Fatalf("CheckBinding: %v", err)
	}
	// Expired synthetic VEK (notAfter 2031-01-01).
	late := newVerifier(t, Options{Now: fixed(clock2031.Add(time.Hour)), Roots: map[Product][]byte{Turin: p.bundle}})
	if _, err := late.VerifyReport(context.Background(), vcekReport, CertChain{VCEK: vcekDER}); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("expired: %v", err)
	}
	// The embedded (real) Turin roots do not trust the synthetic chain.
	real := newVerifier(t, Options{})
	if _, err := real.VerifyReport(context.Background(), vcekReport, CertChain{VCEK: vcekDER}); !errors.Is(err, ErrCertChain) {
		t.Fatalf("synthetic VCEK under AMD roots: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{Roots: map[Product][]byte{"Bergamo": nil}}); !errors.Is(err, ErrUnknownProduct) {
		t.Fatalf("unknown product root: %v", err)
	}
	if _, err := New(Options{Roots: map[Product][]byte{Milan: []byte("junk")}}); err == nil {
		t.Fatal("junk root bundle accepted")
	}
}

func TestContextCanceled(t *testing.T) {
	v := newVerifier(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, readTestdata(t, "e2e-evidence-genoa.json"), verifier.Expected{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// Concurrent use shares the VEK and intermediate caches (run with -race).
func TestConcurrentVerify(t *testing.T) {
	evJSON := readTestdata(t, "e2e-evidence-genoa.json")
	milanRaw := readTestdata(t, "test-report.bin")
	milanVCEK := readTestdata(t, "test-vcek.der")
	genoa, _ := DefaultRootBundle(Genoa)
	gpc, _ := ParseRootBundle(genoa)
	genoaRaw, genoaVCEK := e2eEvidence(t)
	v := newVerifier(t, Options{MaxCachedVEKs: 1})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = v.Verify(context.Background(), evJSON, verifier.Expected{})
			case 1:
				_, err = v.VerifyReport(context.Background(), milanRaw, CertChain{VCEK: milanVCEK})
			default:
				_, err = v.VerifyReport(context.Background(), genoaRaw, CertChain{VCEK: genoaVCEK, ASK: gpc.ASK.Raw})
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
