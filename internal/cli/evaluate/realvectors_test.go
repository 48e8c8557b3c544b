package evaluate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/verifier/snp"
	"github.com/sigil-attestation/sigil/verifier/tdx"
)

func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEvaluateRealEvidence runs `sigil evaluate` on captured TDX and SNP
// evidence, fully offline.
func TestEvaluateRealEvidence(t *testing.T) {
	dir := t.TempDir()
	collateral := filepath.Join(dir, "collateral")
	if err := os.Mkdir(collateral, 0o700); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{
		"verifier/tdx/pcs/testdata/tcbInfo.json":          "tcbinfo-00A06D080000.json",
		"verifier/tdx/pcs/testdata/enclaveIdentity.json":  "qe-identity.json",
		"verifier/tdx/pcs/testdata/tcb_signing_chain.pem": "tcb-signing-chain.pem",
		"verifier/tdx/pcs/testdata/pckcrl_platform.der":   "pckcrl-platform.der",
		"verifier/tdx/pcs/testdata/rootcrl.der":           "rootcacrl.der",
	} {
		if err := os.WriteFile(filepath.Join(collateral, to), repoFile(t, from), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tdxEvidence := func(name, out string, mutate func([]byte)) (string, string) {
		q := repoFile(t, "verifier/tdx/testdata/"+name)
		parsed, err := tdx.ParseQuote(q)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(q)
		}
		ev, _ := json.Marshal(map[string]any{"quote": base64.StdEncoding.EncodeToString(q), "cc_eventlog": nil})
		p := write(t, dir, out, string(ev))
		return p, hex.EncodeToString(parsed.Body.ReportData[:])
	}
	q6, rd6 := tdxEvidence("tdx_quote_6.dat", "q6.json", nil)
	q4, rd4 := tdxEvidence("tdx_quote_4.dat", "q4.json", nil)
	q6bad, _ := tdxEvidence("tdx_quote_6.dat", "q6-tampered.json", func(q []byte) { q[600] ^= 1 })
	snpPath := filepath.Join(dir, "snp.json")
	snpRaw := repoFile(t, "verifier/snp/testdata/e2e-evidence-genoa.json")
	_ = os.WriteFile(snpPath, snpRaw, 0o600)
	snpEv, err := snp.ParseEvidence(snpRaw)
	if err != nil {
		t.Fatal(err)
	}
	rdSNP := hex.EncodeToString(snpEv.Report.ReportData[:])
	clocks := []string{"--now", "2025-11-01T00:00:00Z", "--cert-now", "2025-01-01T00:00:00Z", "--no-network"}

	cases := []struct {
		name      string
		args      []string
		code      int
		tcbStatus string
		stderr    string
	}{
		{"tdx quote 6 with collateral", append([]string{"--tee", "tdx", "--evidence", q6, "--runtime-data-raw", rd6, "--collateral-dir", collateral}, clocks...), 0, "OutOfDate", ""},
		{"tdx quote 4 without collateral fails", append([]string{"--tee", "tdx", "--evidence", q4, "--runtime-data-raw", rd4, "--collateral-dir", collateral}, clocks...), 1, "", "collateral"},
		{"tdx quote 4 offline", append([]string{"--tee", "tdx", "--evidence", q4, "--runtime-data-raw", rd4, "--collateral-dir", collateral, "--offline"}, clocks...), 0, "Unknown", ""},
		{"tdx wrong report data", append([]string{"--tee", "tdx", "--evidence", q6, "--runtime-data-raw", strings.Repeat("00", 64), "--collateral-dir", collateral}, clocks...), 1, "", "report_data"},
		{"tdx tampered quote", append([]string{"--tee", "tdx", "--evidence", q6bad, "--runtime-data-raw", rd6, "--collateral-dir", collateral, "--offline"}, clocks...), 1, "", "signature"},
		{"snp genoa", append([]string{"--tee", "snp", "--evidence", snpPath, "--runtime-data-raw", rdSNP}, clocks...), 0, "", ""},
		{"snp wrong report data", append([]string{"--tee", "snp", "--evidence", snpPath, "--runtime-data-raw", "00"}, clocks...), 1, "", "report data"},
		{"snp after the VCEK expired", []string{"--tee", "snp", "--evidence", snpPath, "--runtime-data-raw", rdSNP, "--now", "2033-01-01T00:00:00Z", "--no-network"}, 1, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), c.args, &out, &errb, func(string) string { return "" })
			if code != c.code || !strings.Contains(strings.ToLower(errb.String()), c.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q", code, c.code, errb.String())
			}
			if c.code != 0 {
				return
			}
			var o struct {
				Submods []struct {
					Input map[string]any `json:"input"`
				} `json:"submods"`
			}
			if err := json.Unmarshal(out.Bytes(), &o); err != nil {
				t.Fatal(err)
			}
			if c.tcbStatus != "" {
				if got := o.Submods[0].Input["tdx"].(map[string]any)["tcb_status"]; got != c.tcbStatus {
					t.Fatalf("tcb_status %v, want %s", got, c.tcbStatus)
				}
			}
		})
	}
}

// TestEvaluateNVIDIA runs `sigil evaluate --tee nvidia` on Trustee's real
// Hopper report: genuineness (signature, chain, FWID, nonce) always decides
// the exit status; unreachable RIM/OCSP services fail unless --offline.
func TestEvaluateNVIDIA(t *testing.T) {
	dir := t.TempDir()
	report := strings.TrimSpace(string(repoFile(t, "verifier/nvidia/testdata/hopperAttestationReport.txt")))
	evidence := func(name, chainFile string) string {
		chain := repoFile(t, "verifier/nvidia/testdata/"+chainFile)
		ev, _ := json.Marshal(map[string]any{"device_evidence_list": []map[string]string{{
			"arch": "HOPPER", "uuid": "GPU-test", "evidence": report, "certificate": base64.StdEncoding.EncodeToString(chain),
		}}})
		return write(t, dir, name, string(ev))
	}
	good := evidence("good.json", "hopper_cert_chain_case1.txt")
	shortChain := evidence("case3.json", "hopper_cert_chain_case3.txt")
	nonce := "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"genuine, offline: RIM source recorded in the claims", []string{"--tee", "nvidia", "--evidence", good, "--runtime-data-raw", nonce, "--no-network", "--offline"}, 0, ""},
		{"genuine, no RIM source and not offline", []string{"--tee", "nvidia", "--evidence", good, "--runtime-data-raw", nonce, "--no-network"}, 1, "vendor service unavailable"},
		{"wrong nonce", []string{"--tee", "nvidia", "--evidence", good, "--runtime-data-raw", strings.Repeat("00", 32), "--no-network", "--offline"}, 1, "nonce"},
		{"chain without the provisioner ICA", []string{"--tee", "nvidia", "--evidence", shortChain, "--runtime-data-raw", nonce, "--no-network", "--offline"}, 1, "chain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), c.args, &out, &errb, func(string) string { return "" })
			if code != c.code || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q", code, c.code, errb.String())
			}
			if code != 0 {
				return
			}
			var o struct {
				Submods []struct {
					Name   string                    `json:"name"`
					Status string                    `json:"status"`
					Input  map[string]map[string]any `json:"input"`
				} `json:"submods"`
			}
			if err := json.Unmarshal(out.Bytes(), &o); err != nil {
				t.Fatal(err)
			}
			gpu := o.Submods[0].Input["nvidia"]
			if o.Submods[0].Name != "gpu0" || gpu["x-nvidia-gpu-attestation-report-signature-verified"] != true ||
				gpu["measres"] == "success" || gpu["x-sigil-measres-reason"] == nil {
				t.Fatalf("claims %v", gpu)
			}
		})
	}
}
