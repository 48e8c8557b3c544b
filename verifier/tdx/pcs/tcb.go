package pcs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// statusFlags is a TCB status broken into its independent findings, so that
// statuses can be combined the way Intel's QVL converges the platform, TDX
// module and QE statuses.
type statusFlags struct {
	revoked, outOfDate, config, swHardening bool
}

func flagsOf(status string) statusFlags {
	switch status {
	case StatusSWHardeningNeeded:
		return statusFlags{swHardening: true}
	case StatusConfigurationNeeded:
		return statusFlags{config: true}
	case StatusConfigurationAndSWHardeningNeeded:
		return statusFlags{config: true, swHardening: true}
	case StatusOutOfDate:
		return statusFlags{outOfDate: true}
	case StatusOutOfDateConfigurationNeeded:
		return statusFlags{outOfDate: true, config: true}
	case StatusRevoked:
		return statusFlags{revoked: true}
	}
	return statusFlags{}
}

func (f statusFlags) String() string {
	switch {
	case f.revoked:
		return StatusRevoked
	case f.outOfDate && f.config:
		return StatusOutOfDateConfigurationNeeded
	case f.outOfDate:
		// QVL reports OutOfDate (not a hardening variant) once out of date.
		return StatusOutOfDate
	case f.config && f.swHardening:
		return StatusConfigurationAndSWHardeningNeeded
	case f.config:
		return StatusConfigurationNeeded
	case f.swHardening:
		return StatusSWHardeningNeeded
	}
	return StatusUpToDate
}

// CombineStatus merges a platform TCB status with the TDX module and QE
// identity statuses like Intel's QVL: Revoked anywhere is Revoked; an
// OutOfDate module or QE turns UpToDate/SWHardeningNeeded into OutOfDate and
// the configuration variants into OutOfDateConfigurationNeeded; the result
// is UpToDate only if every input is UpToDate. Unknown anywhere is Unknown.
func CombineStatus(statuses ...string) string {
	var f statusFlags
	for _, s := range statuses {
		if s != StatusUpToDate && !knownStatus[s] {
			return StatusUnknown
		}
		g := flagsOf(s)
		f.revoked = f.revoked || g.revoked
		f.outOfDate = f.outOfDate || g.outOfDate
		f.config = f.config || g.config
		f.swHardening = f.swHardening || g.swHardening
	}
	return f.String()
}

// levelEval is the outcome of matching one level list.
type levelEval struct {
	status   string // StatusUnknown when nothing matched
	level    *TCBLevel
	moduleID string
}

// matchPlatformLevel returns the first TCB level whose SGX components and
// PCESVN are not above the platform's and whose TDX components are not above
// tee_tcb_svn (from index 2 when the module is evaluated separately).
func matchPlatformLevel(info *TCBInfo, p *PlatformTCB) *TCBLevel {
	start := 0
	if info.Version >= 3 && p.TeeTCBSVN[1] > 0 {
		// Bytes 0 and 1 (TDX module SVN and major version) are evaluated
		// against tdxModuleIdentities instead.
		start = 2
	}
	for i := range info.TCBLevels {
		l := &info.TCBLevels[i]
		ok := true
		for j := 0; j < 16 && ok; j++ {
			ok = int(p.CPUSVN[j]) >= l.TCB.SGXComponents[j].SVN
		}
		if !ok || int(p.PCESVN) < *l.TCB.PCESVN {
			continue
		}
		for j := start; j < 16 && ok; j++ {
			ok = int(p.TeeTCBSVN[j]) >= l.TCB.TDXComponents[j].SVN
		}
		if ok {
			return l
		}
	}
	return nil
}

// matchISVSVN returns the first level whose isvsvn is not above svn.
func matchISVSVN(levels []TCBLevel, svn int) *TCBLevel {
	for i := range levels {
		if *levels[i].TCB.ISVSVN <= svn {
			return &levels[i]
		}
	}
	return nil
}

// evalModule evaluates the TDX module against TCB Info v3's
// tdxModuleIdentities. It returns ok=false (and an empty eval) when the
// module is not evaluated separately (v2, or tee_tcb_svn[1] == 0).
func evalModule(info *TCBInfo, p *PlatformTCB) (levelEval, error) {
	if info.Version < 3 || p.TeeTCBSVN[1] == 0 {
		if info.TDXModule != nil {
			if err := checkSeam(info.TDXModule.MRSigner, info.TDXModule.Attributes, info.TDXModule.AttributesMask, p); err != nil {
				return levelEval{}, err
			}
		}
		return levelEval{}, nil
	}
	id := fmt.Sprintf("TDX_%02X", p.TeeTCBSVN[1])
	for i := range info.TDXModuleIdentities {
		m := &info.TDXModuleIdentities[i]
		if !strings.EqualFold(m.ID, id) {
			continue
		}
		if err := checkSeam(m.MRSigner, m.Attributes, m.AttributesMask, p); err != nil {
			return levelEval{}, err
		}
		l := matchISVSVN(m.TCBLevels, int(p.TeeTCBSVN[0]))
		if l == nil {
			// Below every listed module level: QVL reports the TCB as not
			// supported.
			return levelEval{status: StatusUnknown, moduleID: id}, nil
		}
		return levelEval{status: l.TCBStatus, level: l, moduleID: id}, nil
	}
	return levelEval{status: StatusUnknown, moduleID: id}, nil
}

// checkSeam compares the quote's MRSIGNERSEAM and SEAMATTRIBUTES (when the
// caller supplied them) with a module identity.
func checkSeam(mrsigner, attr, mask []byte, p *PlatformTCB) error {
	if p.MRSignerSeam != nil && !bytes.Equal(p.MRSignerSeam, mrsigner) {
		return fmt.Errorf("%w: mrsignerseam differs from the TDX module identity", ErrTDXModuleMismatch)
	}
	if p.SeamAttributes != nil {
		if len(p.SeamAttributes) != len(mask) {
			return fmt.Errorf("%w: seam attributes length", ErrTDXModuleMismatch)
		}
		for i := range mask {
			if p.SeamAttributes[i]&mask[i] != attr[i] {
				return fmt.Errorf("%w: seam attributes do not match the TDX module identity", ErrTDXModuleMismatch)
			}
		}
	}
	return nil
}

// checkQEIdentity compares the QE report fields with the enclave identity
// (mrsigner, isvprodid, masked miscselect and attributes) and returns the
// matching level, or nil when the QE's ISVSVN is below every level.
func checkQEIdentity(id *EnclaveIdentity, p *PlatformTCB) (*TCBLevel, error) {
	if !bytes.Equal(p.QEMRSIGNER[:], id.MRSigner) {
		return nil, fmt.Errorf("%w: QE mrsigner %x", ErrQEIdentityMismatch, p.QEMRSIGNER[:])
	}
	if int(p.QEISVPRODID) != id.ISVProdID {
		return nil, fmt.Errorf("%w: QE isvprodid %d, want %d", ErrQEIdentityMismatch, p.QEISVPRODID, id.ISVProdID)
	}
	// MISCSELECT is a little-endian uint32 in the report; the identity
	// writes the value as big-endian hex.
	misc := binary.LittleEndian.Uint32(p.QEMiscSelect[:])
	if misc&binary.BigEndian.Uint32(id.MiscSelectMask) != binary.BigEndian.Uint32(id.MiscSelect) {
		return nil, fmt.Errorf("%w: QE miscselect %08x", ErrQEIdentityMismatch, misc)
	}
	for i := range 16 {
		if p.QEAttributes[i]&id.AttributesMask[i] != id.Attributes[i] {
			return nil, fmt.Errorf("%w: QE attributes %x", ErrQEIdentityMismatch, p.QEAttributes[:])
		}
	}
	return matchISVSVN(id.TCBLevels, int(p.QEISVSVN)), nil
}
