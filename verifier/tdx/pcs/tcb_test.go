package pcs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestCombineStatus(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{StatusUpToDate, StatusUpToDate, StatusUpToDate}, StatusUpToDate},
		{[]string{StatusSWHardeningNeeded, StatusUpToDate, StatusUpToDate}, StatusSWHardeningNeeded},
		{[]string{StatusConfigurationNeeded, StatusUpToDate, StatusUpToDate}, StatusConfigurationNeeded},
		{[]string{StatusConfigurationAndSWHardeningNeeded, StatusUpToDate, StatusUpToDate}, StatusConfigurationAndSWHardeningNeeded},
		{[]string{StatusOutOfDate, StatusUpToDate, StatusUpToDate}, StatusOutOfDate},
		{[]string{StatusOutOfDateConfigurationNeeded, StatusUpToDate, StatusUpToDate}, StatusOutOfDateConfigurationNeeded},
		{[]string{StatusRevoked, StatusUpToDate, StatusUpToDate}, StatusRevoked},
		// QVL convergence with an OutOfDate QE or module.
		{[]string{StatusUpToDate, StatusUpToDate, StatusOutOfDate}, StatusOutOfDate},
		{[]string{StatusSWHardeningNeeded, StatusUpToDate, StatusOutOfDate}, StatusOutOfDate},
		{[]string{StatusConfigurationNeeded, StatusUpToDate, StatusOutOfDate}, StatusOutOfDateConfigurationNeeded},
		{[]string{StatusConfigurationAndSWHardeningNeeded, StatusOutOfDate, StatusUpToDate}, StatusOutOfDateConfigurationNeeded},
		{[]string{StatusOutOfDate, StatusOutOfDate, StatusOutOfDate}, StatusOutOfDate},
		// Revoked QE or module wins.
		{[]string{StatusUpToDate, StatusUpToDate, StatusRevoked}, StatusRevoked},
		{[]string{StatusOutOfDateConfigurationNeeded, StatusRevoked, StatusUpToDate}, StatusRevoked},
		// Quote 6: platform OutOfDate, module and QE UpToDate.
		{[]string{StatusOutOfDate, StatusUpToDate, StatusUpToDate}, StatusOutOfDate},
		{[]string{StatusUpToDate, StatusUnknown, StatusUpToDate}, StatusUnknown},
		{[]string{StatusUpToDate, "Bogus"}, StatusUnknown},
	}
	for _, tc := range tests {
		if got := CombineStatus(tc.in...); got != tc.want {
			t.Errorf("CombineStatus(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func ip(v int) *int { return &v }

func comps(v ...int) []TCBComponent {
	out := make([]TCBComponent, 16)
	for i, x := range v {
		out[i].SVN = x
	}
	return out
}

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// synthetic builds a v3 TCB Info with levels (newest first):
//
//	L0 sgx 5…, pcesvn 13, tdx [_,_,3]   UpToDate            2025-01-01
//	L1 sgx 4…, pcesvn 13, tdx [_,_,3]   SWHardeningNeeded   2024-06-01 (SA-1)
//	L2 sgx 4…, pcesvn 12, tdx [_,_,2]   ConfigurationNeeded 2024-01-01 (SA-2)
//	L3 sgx 3…, pcesvn 11, tdx [_,_,2]   OutOfDate           2023-01-01
//	L4 sgx 2…, pcesvn 10, tdx [_,_,1]   Revoked             2022-01-01
//
// and module identities TDX_01 (isvsvn 4 UpToDate, 2 OutOfDate, 1 Revoked).
func synthetic() (*TCBInfo, *EnclaveIdentity) {
	lvl := func(sgx, pce, tdx int, status, d string, adv ...string) TCBLevel {
		return TCBLevel{
			TCB:     TCB{SGXComponents: comps(sgx, sgx), PCESVN: ip(pce), TDXComponents: comps(0, 0, tdx)},
			TCBDate: date(d), TCBStatus: status, AdvisoryIDs: adv,
		}
	}
	isv := func(svn int, status, d string, adv ...string) TCBLevel {
		return TCBLevel{TCB: TCB{ISVSVN: ip(svn)}, TCBDate: date(d), TCBStatus: status, AdvisoryIDs: adv}
	}
	info := &TCBInfo{
		ID: "TDX", Version: 3, IssueDate: date("2025-01-01"), NextUpdate: date("2025-02-01"),
		FMSPC: HexBytes{1, 2, 3, 4, 5, 6}, PCEID: HexBytes{0, 0}, TCBEvaluationDataNumber: 20,
		TCBLevels: []TCBLevel{
			lvl(5, 13, 3, StatusUpToDate, "2025-01-01"),
			lvl(4, 13, 3, StatusSWHardeningNeeded, "2024-06-01", "INTEL-SA-00001"),
			lvl(4, 12, 2, StatusConfigurationNeeded, "2024-01-01", "INTEL-SA-00002"),
			lvl(3, 11, 2, StatusOutOfDate, "2023-01-01"),
			lvl(2, 10, 1, StatusRevoked, "2022-01-01"),
		},
		TDXModuleIdentities: []TDXModuleIdentity{{
			ID: "TDX_01", MRSigner: make(HexBytes, 48), Attributes: make(HexBytes, 8), AttributesMask: HexBytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			TCBLevels: []TCBLevel{
				isv(4, StatusUpToDate, "2024-12-01"),
				isv(2, StatusOutOfDate, "2023-06-01", "INTEL-SA-00003"),
				isv(1, StatusRevoked, "2022-06-01"),
			},
		}},
	}
	qe := &EnclaveIdentity{
		ID: "TD_QE", Version: 2, IssueDate: date("2025-01-02"), NextUpdate: date("2025-02-02"), TCBEvaluationDataNumber: 19,
		MiscSelect: HexBytes{0, 0, 0, 0}, MiscSelectMask: HexBytes{0xff, 0xff, 0xff, 0xff},
		Attributes: make(HexBytes, 16), AttributesMask: make(HexBytes, 16), MRSigner: make(HexBytes, 32), ISVProdID: 2,
		TCBLevels: []TCBLevel{isv(8, StatusUpToDate, "2024-11-01"), isv(6, StatusOutOfDate, "2023-11-01", "INTEL-SA-00004")},
	}
	return info, qe
}

func TestEvaluateCollateralQVLTable(t *testing.T) {
	info, qe := synthetic()
	base := func(sgx, pce, tdx, modMajor, modSVN, qeSVN int) PlatformTCB {
		p := PlatformTCB{FMSPC: []byte{1, 2, 3, 4, 5, 6}, PCEID: []byte{0, 0}, PCESVN: uint16(pce), QEISVSVN: uint16(qeSVN), QEISVPRODID: 2}
		p.CPUSVN[0], p.CPUSVN[1] = byte(sgx), byte(sgx)
		p.TeeTCBSVN[0], p.TeeTCBSVN[1], p.TeeTCBSVN[2] = byte(modSVN), byte(modMajor), byte(tdx)
		return p
	}
	now := date("2025-01-15")
	tests := []struct {
		name                    string
		p                       PlatformTCB
		status, plat, mod, qeSt string
		tcbDate                 string
		adv                     []string
		modID                   string
	}{
		{"all up to date", base(5, 13, 3, 1, 4, 8), StatusUpToDate, StatusUpToDate, StatusUpToDate, StatusUpToDate, "2025-01-01T00:00:00Z", nil, "TDX_01"},
		{"sw hardening", base(4, 13, 3, 1, 5, 9), StatusSWHardeningNeeded, StatusSWHardeningNeeded, StatusUpToDate, StatusUpToDate, "2024-06-01T00:00:00Z", []string{"INTEL-SA-00001"}, "TDX_01"},
		{"configuration needed (pcesvn)", base(5, 12, 3, 1, 4, 8), StatusConfigurationNeeded, StatusConfigurationNeeded, StatusUpToDate, StatusUpToDate, "2024-01-01T00:00:00Z", []string{"INTEL-SA-00002"}, "TDX_01"},
		{"configuration needed (tdx component)", base(5, 13, 2, 1, 4, 8), StatusConfigurationNeeded, StatusConfigurationNeeded, StatusUpToDate, StatusUpToDate, "2024-01-01T00:00:00Z", []string{"INTEL-SA-00002"}, "TDX_01"},
		{"out of date", base(3, 13, 3, 1, 4, 8), StatusOutOfDate, StatusOutOfDate, StatusUpToDate, StatusUpToDate, "2023-01-01T00:00:00Z", nil, "TDX_01"},
		{"revoked platform", base(2, 10, 1, 1, 4, 8), StatusRevoked, StatusRevoked, StatusUpToDate, StatusUpToDate, "2022-01-01T00:00:00Z", nil, "TDX_01"},
		{"module out of date", base(5, 13, 3, 1, 3, 8), StatusOutOfDate, StatusUpToDate, StatusOutOfDate, StatusUpToDate, "2025-01-01T00:00:00Z", []string{"INTEL-SA-00003"}, "TDX_01"},
		{"module out of date + config", base(4, 12, 2, 1, 2, 8), StatusOutOfDateConfigurationNeeded, StatusConfigurationNeeded, StatusOutOfDate, StatusUpToDate, "2024-01-01T00:00:00Z", []string{"INTEL-SA-00002", "INTEL-SA-00003"}, "TDX_01"},
		{"module revoked", base(5, 13, 3, 1, 1, 8), StatusRevoked, StatusUpToDate, StatusRevoked, StatusUpToDate, "2025-01-01T00:00:00Z", nil, "TDX_01"},
		{"module below all levels", base(5, 13, 3, 1, 0, 8), StatusUnknown, StatusUpToDate, StatusUnknown, StatusUpToDate, "2025-01-01T00:00:00Z", nil, "TDX_01"},
		{"module identity missing", base(5, 13, 3, 2, 4, 8), StatusUnknown, StatusUpToDate, StatusUnknown, StatusUpToDate, "2025-01-01T00:00:00Z", nil, "TDX_02"},
		{"QE out of date + sw hardening", base(4, 13, 3, 1, 4, 7), StatusOutOfDate, StatusSWHardeningNeeded, StatusUpToDate, StatusOutOfDate, "2024-06-01T00:00:00Z", []string{"INTEL-SA-00001", "INTEL-SA-00004"}, "TDX_01"},
		{"QE below all levels", base(5, 13, 3, 1, 4, 5), StatusRevoked, StatusUpToDate, StatusUpToDate, StatusRevoked, "2025-01-01T00:00:00Z", nil, "TDX_01"},
		{"no platform level", base(1, 13, 3, 1, 4, 8), StatusUnknown, StatusUnknown, StatusUpToDate, StatusUpToDate, "", nil, "TDX_01"},
		// tee_tcb_svn[1] == 0: the module SVNs are compared in the levels'
		// tdxtcbcomponents (index 0 and 1 are 0 there) and no identity used.
		{"module in platform level", base(5, 13, 3, 0, 0, 8), StatusUpToDate, StatusUpToDate, StatusUpToDate, StatusUpToDate, "2025-01-01T00:00:00Z", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := EvaluateCollateral(info, qe, tc.p, now)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.PlatformStatus != tc.plat || r.ModuleStatus != tc.mod || r.QEStatus != tc.qeSt ||
				r.TCBDate != tc.tcbDate || r.ModuleIdentityID != tc.modID {
				t.Errorf("got status=%s platform=%s module=%s qe=%s date=%q module id=%q reason=%q",
					r.Status, r.PlatformStatus, r.ModuleStatus, r.QEStatus, r.TCBDate, r.ModuleIdentityID, r.Reason)
			}
			if !slices.Equal(r.AdvisoryIDs, append([]string{}, tc.adv...)) {
				t.Errorf("advisories %v, want %v", r.AdvisoryIDs, tc.adv)
			}
			if (r.Status == StatusUnknown) != (r.Reason != "") && tc.qeSt != StatusRevoked {
				t.Errorf("reason %q for status %s", r.Reason, r.Status)
			}
			if r.TCBEvaluationDataNumber != 19 || r.CollateralExpired {
				t.Errorf("eval num %d expired %v", r.TCBEvaluationDataNumber, r.CollateralExpired)
			}
		})
	}
	// A v2 TCB Info (no identities) compares the module bytes in the levels.
	v2 := *info
	v2.Version = 2
	v2.TDXModuleIdentities = nil
	r, err := EvaluateCollateral(&v2, qe, base(5, 13, 3, 1, 4, 8), now)
	if err != nil || r.Status != StatusUpToDate || r.ModuleIdentityID != "" {
		t.Fatalf("v2: %v %+v", err, r)
	}
}

// TestPCSUnknownFMSPC checks that a PCS 404 for an FMSPC without
// collateral is reported as unavailable collateral.
func TestPCSUnknownFMSPC(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c, err := New(Options{BaseURL: srv.URL, Now: func() time.Time { return collateralNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Evaluate(context.Background(), quote4Platform(t)); !errors.Is(err, ErrCollateralUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

// TestRealCollateralVariants evaluates variations of quote 6's values against
// the real tcbInfo.json / enclaveIdentity.json.
func TestRealCollateralVariants(t *testing.T) {
	ti, err := ParseTCBInfo(readTD(t, "tcbInfo.json"))
	if err != nil {
		t.Fatal(err)
	}
	qi, err := ParseEnclaveIdentity(readTD(t, "enclaveIdentity.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		mod                    func(*PlatformTCB)
		status, plat, mod2, qe string
	}{
		{"quote 6", func(*PlatformTCB) {}, StatusOutOfDate, StatusOutOfDate, StatusUpToDate, StatusUpToDate},
		{"PCESVN 13", func(p *PlatformTCB) { p.PCESVN = 13 }, StatusUpToDate, StatusUpToDate, StatusUpToDate, StatusUpToDate},
		// Bytes 0-1 are judged by TDX_03 only, not by the levels' [5,0,…].
		{"module SVN 3", func(p *PlatformTCB) { p.PCESVN = 13; p.TeeTCBSVN[0] = 3 }, StatusUpToDate, StatusUpToDate, StatusUpToDate, StatusUpToDate},
		{"module SVN 2", func(p *PlatformTCB) { p.PCESVN = 13; p.TeeTCBSVN[0] = 2 }, StatusUnknown, StatusUpToDate, StatusUnknown, StatusUpToDate},
		{"TDX_01 SVN 2", func(p *PlatformTCB) { p.PCESVN = 13; p.TeeTCBSVN[0], p.TeeTCBSVN[1] = 2, 1 }, StatusOutOfDate, StatusUpToDate, StatusOutOfDate, StatusUpToDate},
		{"TDX late microcode too old", func(p *PlatformTCB) { p.PCESVN = 13; p.TeeTCBSVN[2] = 1 }, StatusUnknown, StatusUnknown, StatusUpToDate, StatusUpToDate},
		{"CPUSVN too old", func(p *PlatformTCB) { p.PCESVN = 13; p.CPUSVN[4] = 3 }, StatusUnknown, StatusUnknown, StatusUpToDate, StatusUpToDate},
		{"QE ISVSVN 3", func(p *PlatformTCB) { p.PCESVN = 13; p.QEISVSVN = 3 }, StatusRevoked, StatusUpToDate, StatusUpToDate, StatusRevoked},
		{"module in levels (tee_tcb_svn[1]=0)", func(p *PlatformTCB) { p.PCESVN = 13; p.TeeTCBSVN[1] = 0 }, StatusUpToDate, StatusUpToDate, StatusUpToDate, StatusUpToDate},
		{"module in levels, SVN 4", func(p *PlatformTCB) { p.PCESVN = 13; p.TeeTCBSVN[0], p.TeeTCBSVN[1] = 4, 0 }, StatusUnknown, StatusUnknown, StatusUnknown, StatusUpToDate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := quote6Platform(t)
			tc.mod(&p)
			r, err := EvaluateCollateral(&ti.TCBInfo, &qi.Identity, p, collateralNow)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.PlatformStatus != tc.plat || r.ModuleStatus != tc.mod2 || r.QEStatus != tc.qe {
				t.Errorf("got %s (platform %s, module %s, QE %s), want %s (%s, %s, %s); reason %q",
					r.Status, r.PlatformStatus, r.ModuleStatus, r.QEStatus, tc.status, tc.plat, tc.mod2, tc.qe, r.Reason)
			}
		})
	}
}

func TestQuote4AgainstTCBInfo(t *testing.T) {
	ti, err := ParseTCBInfo(readTD(t, "tcbInfo.json"))
	if err != nil {
		t.Fatal(err)
	}
	qi, err := ParseEnclaveIdentity(readTD(t, "enclaveIdentity.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EvaluateCollateral(&ti.TCBInfo, &qi.Identity, quote4Platform(t), collateralNow); !errors.Is(err, ErrFMSPCMismatch) {
		t.Fatalf("err = %v, want ErrFMSPCMismatch", err)
	}
	// Upper- and lower-case FMSPC spellings are the same bytes.
	if hexUpper := ti.TCBInfo.FMSPC; string(hexUpper) != string(quote6Platform(t).FMSPC) {
		t.Fatal("FMSPC bytes differ")
	}
}
