package snp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The e2e JSON rebuilds to a report whose serde rendering is the same JSON
// value, and raw → serde → raw is the identity.
func TestSerdeRoundTrip(t *testing.T) {
	evJSON := readTestdata(t, "e2e-evidence-genoa.json")
	ev, err := ParseEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}
	again := serdeJSON(t, ev.Report, []map[string]any{certEntry("VCEK", ev.Certs.VCEK)})
	var a, b any
	if err := json.Unmarshal(evJSON, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &b); err != nil {
		t.Fatal(err)
	}
	// Trustee's file has no mitigation-vector members (version 3); ours
	// writes null for them.
	rep := b.(map[string]any)["attestation_report"].(map[string]any)
	delete(rep, "launch_mit_vector")
	delete(rep, "current_mit_vector")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("re-rendered evidence differs:\n%s\n%s", ja, jb)
	}

	raw := readTestdata(t, "test-report.bin")
	ev2, err := ParseEvidence(serdeJSON(t, mustParse(t, raw), nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev2.Report.Raw(), raw) {
		t.Fatal("test-report.bin does not survive raw → serde → raw")
	}
	if c := ev2.Certs; c.VCEK != nil || c.VLEK != nil || c.ASK != nil || c.ARK != nil {
		t.Fatal("cert_chain null gave certificates")
	}
}

func TestParseEvidenceEncodings(t *testing.T) {
	raw := readTestdata(t, "test-report.bin")
	ints := make([]int, len(raw))
	for i, c := range raw {
		ints[i] = int(c)
	}
	arr, _ := json.Marshal(ints)
	str, _ := json.Marshal(base64.StdEncoding.EncodeToString(raw))
	for name, in := range map[string][]byte{
		"raw":            raw,
		"byte array":     arr,
		"indented array": append([]byte("\n  "), arr...),
		"json base64":    str,
		"base64":         []byte(base64.StdEncoding.EncodeToString(raw)),
		"base64url raw":  []byte(base64.RawURLEncoding.EncodeToString(raw) + "\n"),
	} {
		ev, err := ParseEvidence(in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(ev.Report.Raw(), raw) {
			t.Errorf("%s: report differs", name)
		}
	}
}

func TestParseEvidenceErrors(t *testing.T) {
	evJSON := readTestdata(t, "e2e-evidence-genoa.json")
	edit := func(f func(rep map[string]any, top map[string]any)) []byte {
		var top map[string]any
		if err := json.Unmarshal(evJSON, &top); err != nil {
			t.Fatal(err)
		}
		f(top["attestation_report"].(map[string]any), top)
		b, err := json.Marshal(top)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformedEvidence},
		{"spaces", []byte("  \n"), ErrMalformedEvidence},
		{"bad json", []byte(`{"attestation_report":`), ErrMalformedEvidence},
		{"no report", []byte(`{"cert_chain":null}`), ErrMalformedEvidence},
		{"not base64", []byte("!!!"), ErrMalformedEvidence},
		{"short raw", []byte{2, 0, 0, 0}, ErrMalformedEvidence},
		{"short base64", []byte("AgAAAA=="), ErrMalformedReport},
		{"byte array value 256", []byte("[256]"), ErrMalformedEvidence},
		{"missing measurement", edit(func(r, _ map[string]any) { delete(r, "measurement") }), ErrMalformedEvidence},
		{"missing version", edit(func(r, _ map[string]any) { delete(r, "version") }), ErrMalformedEvidence},
		{"missing signature", edit(func(r, _ map[string]any) { delete(r, "signature") }), ErrMalformedEvidence},
		{"short chip_id", edit(func(r, _ map[string]any) { r["chip_id"] = []int{1, 2} }), ErrMalformedEvidence},
		{"long signature r", edit(func(r, _ map[string]any) {
			r["signature"].(map[string]any)["r"] = make([]int, 73)
		}), ErrMalformedEvidence},
		{"negative byte", edit(func(r, _ map[string]any) { r["host_data"] = append(make([]any, 31), -1) }), ErrMalformedEvidence},
		{"string version", edit(func(r, _ map[string]any) { r["version"] = "3" }), ErrMalformedEvidence},
		{"tcb without snp", edit(func(r, _ map[string]any) { delete(r["reported_tcb"].(map[string]any), "snp") }), ErrMalformedEvidence},
		{"fmc on Genoa", edit(func(r, _ map[string]any) { r["launch_tcb"].(map[string]any)["fmc"] = 1 }), ErrMalformedEvidence},
		{"Turin without fmc", edit(func(r, _ map[string]any) { r["cpuid_fam_id"] = 0x1A }), ErrMalformedEvidence},
		{"v3 without cpuid", edit(func(r, _ map[string]any) { r["cpuid_mod_id"] = nil }), ErrMalformedEvidence},
		{"current without build", edit(func(r, _ map[string]any) { delete(r["current"].(map[string]any), "build") }), ErrMalformedEvidence},
		{"version 1", edit(func(r, _ map[string]any) { r["version"] = 1 }), ErrMalformedReport},
		{"version 6", edit(func(r, _ map[string]any) { r["version"] = 6 }), ErrMalformedReport},
		{"cert_chain not a list", edit(func(_, top map[string]any) { top["cert_chain"] = "x" }), ErrMalformedEvidence},
		{"cert entry data not bytes", edit(func(_, top map[string]any) {
			top["cert_chain"] = []any{map[string]any{"cert_type": "VCEK", "data": "abc"}}
		}), ErrMalformedEvidence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvidence(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseReportLengths(t *testing.T) {
	raw := readTestdata(t, "test-report.bin")
	for _, n := range []int{0, 100, ReportSize - 1, ReportSize + 1, 2 * ReportSize} {
		b := make([]byte, n)
		copy(b, raw)
		if _, err := ParseReport(b); !errors.Is(err, ErrMalformedReport) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	// Raw() and SignedBytes() are copies.
	r := mustParse(t, raw)
	r.Raw()[0] = 9
	r.SignedBytes()[0] = 9
	if r.Raw()[0] != 2 || len(r.SignedBytes()) != SignedSize {
		t.Fatal("Raw/SignedBytes alias the report")
	}
}

func TestClaimsOfPolicyBits(t *testing.T) {
	raw := bytes.Clone(readTestdata(t, "test-report.bin"))
	// debug (19), migrate_ma (18), single socket (20); ABI 1.51; TSME on, SMT off.
	raw[offPolicy], raw[offPolicy+1], raw[offPolicy+2] = 51, 1, 0x1f
	raw[offPlatformInfo] = 0x02
	c := mustParse(t, raw).Claims()
	want := map[string]any{
		"policy_abi_major": json.Number("1"), "policy_abi_minor": json.Number("51"),
		"policy_smt_allowed": true, "policy_migrate_ma": true, "policy_debug_allowed": true,
		"policy_single_socket": true, "platform_tsme_enabled": true, "platform_smt_enabled": false,
	}
	for k, w := range want {
		if c[k] != w {
			t.Errorf("%s = %v, want %v", k, c[k], w)
		}
	}
	if !strings.HasPrefix(c["report_data"].(string), "ec6c52d7") {
		t.Error("report_data claim")
	}
}

func FuzzParseReport(f *testing.F) {
	raw := readTestdata(f, "test-report.bin")
	e2e, _ := e2eEvidence(f)
	f.Add(raw)
	f.Add(e2e)
	v5 := bytes.Clone(e2e)
	v5[0] = 5
	f.Add(v5)
	turin := bytes.Clone(e2e)
	turin[offCPUIDFamID] = 0x1A
	f.Add(turin)
	f.Add(raw[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedReport) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if !bytes.Equal(r.Raw(), b) {
			t.Fatal("Raw() differs from input")
		}
		_ = r.Claims()
		_, _ = r.Product()
		// Every decoded TCB re-encodes into the bytes the signature covers
		// only for the non-reserved bytes; check the round trip of the
		// decoded fields instead.
		again := mustParse(t, r.Raw())
		if again.ReportedTCB != r.ReportedTCB || again.ChipID != r.ChipID {
			t.Fatal("reparse differs")
		}
	})
}

func FuzzParseEvidence(f *testing.F) {
	f.Add(readTestdata(f, "e2e-evidence-genoa.json"))
	raw := readTestdata(f, "test-report.bin")
	f.Add(raw)
	f.Add([]byte(base64.StdEncoding.EncodeToString(raw)))
	f.Add([]byte(`[2,0,0,0]`))
	f.Add([]byte(`{"attestation_report":{"version":3},"cert_chain":null}`))
	f.Add(serdeJSON(f, mustParse(f, raw), []map[string]any{certEntry("ARK", []byte{1}), {"cert_type": map[string]string{"OTHER": "x"}, "data": []int{}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseEvidence(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedEvidence) && !errors.Is(err, ErrMalformedReport) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		if len(ev.Report.Raw()) != ReportSize {
			t.Fatal("bad report size")
		}
		// What parses re-renders and parses to the same bytes.
		ev2, err := ParseEvidence(serdeJSON(t, ev.Report, nil))
		if err != nil {
			t.Fatalf("re-rendered evidence: %v", err)
		}
		a, b2 := *ev.Report, *ev2.Report
		a.raw, b2.raw = [ReportSize]byte{}, [ReportSize]byte{}
		if a != b2 {
			t.Fatalf("re-rendered evidence differs:\n%+v\n%+v", a, b2)
		}
	})
}
