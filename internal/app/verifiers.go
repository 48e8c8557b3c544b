// Package app wires Sigil's packages into the running product: the
// compiled-in verifiers, the storage backend chosen by config, and the KBS
// with its built-in Attestation Service and RVPS.
package app

import (
	"github.com/sigil-attestation/sigil/protocol"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/sample"
	"github.com/sigil-attestation/sigil/verifier/sampledevice"
)

// Verifiers returns the compiled-in verifiers by tee name.
func Verifiers() map[string]verifier.Verifier {
	return map[string]verifier.Verifier{
		protocol.TeeSample:       sample.New(),
		protocol.TeeSampleDevice: sampledevice.New(),
	}
}
