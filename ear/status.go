// Package ear builds EAT Attestation Results (EAR) as issued by the Trustee
// attestation service: AR4SI trustworthiness vectors, per-submodule appraisal
// status and the ES256-signed JWT that carries them.
package ear

import "fmt"

// Status is the overall appraisal status of a submodule ("ear.status").
type Status string

// The four AR4SI tiers, from best to worst.
const (
	StatusNone            Status = "none"
	StatusAffirming       Status = "affirming"
	StatusWarning         Status = "warning"
	StatusContraindicated Status = "contraindicated"
)

// Rank orders statuses from best (0, none) to worst (3, contraindicated).
// An unknown status ranks as -1.
func (s Status) Rank() int {
	switch s {
	case StatusNone:
		return 0
	case StatusAffirming:
		return 1
	case StatusWarning:
		return 2
	case StatusContraindicated:
		return 3
	}
	return -1
}

// Valid reports whether s is one of the four defined statuses.
func (s Status) Valid() bool { return s.Rank() >= 0 }

// WorseThan reports whether s is a worse tier than o.
func (s Status) WorseThan(o Status) bool { return s.Rank() > o.Rank() }

// Worst returns the worse of the given statuses (StatusNone for none).
func Worst(statuses ...Status) Status {
	w := StatusNone
	for _, s := range statuses {
		if s.WorseThan(w) {
			w = s
		}
	}
	return w
}

// ParseStatus validates a status string.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", fmt.Errorf("ear: unknown status %q", s)
	}
	return st, nil
}

// StatusOf returns the tier of a single trust-claim value:
// -1..1 none, -32..31 affirming, -96..95 warning, anything else contraindicated.
func StatusOf(v int8) Status {
	switch {
	case v >= -1 && v <= 1:
		return StatusNone
	case v >= -32 && v <= 31:
		return StatusAffirming
	case v >= -96 && v <= 95:
		return StatusWarning
	default:
		return StatusContraindicated
	}
}
