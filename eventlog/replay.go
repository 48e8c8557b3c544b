package eventlog

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
)

// RTMRSize is the size of a TDX RTMR (SHA-384).
const RTMRSize = 48

// hashOf returns data's digest under alg, or false for algorithms this
// package cannot compute.
func hashOf(alg Alg, data []byte) ([]byte, bool) {
	switch alg {
	case AlgSHA1:
		s := sha1.Sum(data)
		return s[:], true
	case AlgSHA256:
		s := sha256.Sum256(data)
		return s[:], true
	case AlgSHA384:
		s := sha512.Sum384(data)
		return s[:], true
	case AlgSHA512:
		s := sha512.Sum512(data)
		return s[:], true
	case AlgSM3:
		s := sm3Sum(data)
		return s[:], true
	}
	return nil, false
}

// digestsMatch reports whether the event has digests and each equals the
// hash of data.
func digestsMatch(digests []Digest, data []byte) bool {
	if len(digests) == 0 {
		return false
	}
	for _, d := range digests {
		h, ok := hashOf(d.Alg, data)
		if !ok || !bytes.Equal(h, d.Digest) {
			return false
		}
	}
	return true
}

// Replay recomputes RTMR0..RTMR3 from the log's SHA-384 digests: starting
// from 48 zero bytes, RTMR[i] = SHA-384(RTMR[i] || digest) for every SHA-384
// digest of every event with CC MR index i+1, in log order (EV_NO_ACTION
// events included, as Trustee does). An RTMR without events stays zero.
// Events with MR index 0 (MRTD) or above 4 are not replayed.
func (l *Log) Replay() ([4][]byte, error) {
	var out [4][]byte
	has384 := false
	for _, a := range l.algs {
		has384 = has384 || a.Alg == AlgSHA384
	}
	if !has384 {
		return out, ErrNoSHA384
	}
	var mr [4][RTMRSize]byte
	var buf [2 * RTMRSize]byte
	for _, ev := range l.events {
		if ev.MRIndex < 1 || ev.MRIndex > 4 {
			continue
		}
		r := &mr[ev.MRIndex-1]
		for _, d := range ev.Digests {
			if d.Alg != AlgSHA384 {
				continue
			}
			copy(buf[:RTMRSize], r[:])
			copy(buf[RTMRSize:], d.Digest)
			*r = sha512.Sum384(buf[:])
		}
	}
	for i := range out {
		out[i] = bytes.Clone(mr[i][:])
	}
	return out, nil
}

// RTMRMismatchError reports the first RTMR whose quoted value differs from
// the replayed one. It matches ErrRTMRMismatch with errors.Is.
type RTMRMismatchError struct {
	// RTMR is the register number (0–3); the event-log MR index is RTMR+1.
	RTMR int
	// Expected is the value from the quote, Replayed the log's replay.
	Expected, Replayed []byte
}

func (e *RTMRMismatchError) Error() string {
	return fmt.Sprintf("eventlog: RTMR%d (CC MR index %d) does not match event log replay: quote %s, replayed %s",
		e.RTMR, e.RTMR+1, hex.EncodeToString(e.Expected), hex.EncodeToString(e.Replayed))
}

// Is makes errors.Is(err, ErrRTMRMismatch) true.
func (e *RTMRMismatchError) Is(target error) bool { return target == ErrRTMRMismatch }

// VerifyRTMRs replays the log and compares all four RTMRs with rtmrs (the
// quote's RTMR0..RTMR3). Every register is compared, including those the log
// has no events for (which must then be zero). The first mismatch is
// returned as *RTMRMismatchError.
func (l *Log) VerifyRTMRs(rtmrs [4][]byte) error {
	replayed, err := l.Replay()
	if err != nil {
		return err
	}
	for i := range rtmrs {
		if !bytes.Equal(rtmrs[i], replayed[i]) {
			return &RTMRMismatchError{RTMR: i, Expected: bytes.Clone(rtmrs[i]), Replayed: replayed[i]}
		}
	}
	return nil
}
