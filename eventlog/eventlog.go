// Package eventlog parses confidential-computing event logs in the TCG PC
// Client "crypto agile" format, as published by Intel TDX guests in the ACPI
// CCEL table (and extended by the attestation agent with AAEL entries).
//
// ParseCCEL walks the log structurally: the first event must be the
// TCG_EfiSpecIdEvent header (EV_NO_ACTION, "Spec ID Event03"), which declares
// the digest algorithms and their sizes; every later event is a
// TCG_PCR_EVENT2. The walk stops at the first event header whose first eight
// bytes are all 0x00 or all 0xFF, which is how the CCEL region is padded, so a
// log is never read into its padding.
//
// Event-log measurement register (CC MR) index 0 is MRTD and is not replayed;
// CC MR indices 1–4 correspond to RTMR0–RTMR3. Replay extends SHA-384 digests
// the way Trustee does: every event of an index contributes, EV_NO_ACTION
// events included.
//
// Claims reproduces Trustee's "uefi_event_logs" claim, including the per-type
// "details" decoding (strings, EFI variables, UEFI device paths, AAEL
// entries).
package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrMalformed means the log is not a well-formed crypto-agile event
	// log (truncated event, size or count out of range, unknown digest
	// algorithm, …).
	ErrMalformed = errors.New("eventlog: malformed event log")
	// ErrMissingSpecID means the log does not start with a
	// TCG_EfiSpecIdEvent header. It wraps ErrMalformed.
	ErrMissingSpecID = fmt.Errorf("%w: missing Spec ID Event03 header", ErrMalformed)
	// ErrNoSHA384 means the log carries no SHA-384 digests, so RTMRs cannot
	// be replayed.
	ErrNoSHA384 = errors.New("eventlog: log has no SHA-384 digests")
	// ErrRTMRMismatch means a replayed RTMR differs from the quoted value.
	ErrRTMRMismatch = errors.New("eventlog: RTMR does not match event log replay")
)

// Alg is a TCG algorithm identifier (TPM_ALG_ID).
type Alg uint16

// Digest algorithms that appear in CC event logs.
const (
	AlgSHA1   Alg = 0x0004
	AlgSHA256 Alg = 0x000B
	AlgSHA384 Alg = 0x000C
	AlgSHA512 Alg = 0x000D
	AlgSM3    Alg = 0x0012
)

// String returns the name Trustee uses for the algorithm ("SHA-384", "SM3",
// …) or "0x%04x" for identifiers it does not name.
func (a Alg) String() string {
	switch a {
	case 0x0001:
		return "RSA"
	case 0x0003:
		return "TDES"
	case AlgSHA1:
		return "SHA-1"
	case AlgSHA256:
		return "SHA-256"
	case AlgSHA384:
		return "SHA-384"
	case AlgSHA512:
		return "SHA-512"
	case AlgSM3:
		return "SM3"
	}
	return fmt.Sprintf("0x%04x", uint16(a))
}

// knownDigestSize is the digest size a header must declare for the algorithms
// whose size is fixed (0 for others).
func knownDigestSize(a Alg) int {
	switch a {
	case AlgSHA1:
		return 20
	case AlgSHA256, AlgSM3:
		return 32
	case AlgSHA384:
		return 48
	case AlgSHA512:
		return 64
	}
	return 0
}

// AlgSize is one entry of the Spec ID header's digest-size table.
type AlgSize struct {
	Alg  Alg
	Size int
}

// Digest is one digest of an event.
type Digest struct {
	Alg    Alg
	Digest []byte
}

// Event is one TCG_PCR_EVENT2 of the log (the Spec ID header is not an
// Event).
type Event struct {
	// Index is the position of the event in the log, 0-based, not counting
	// the Spec ID header.
	Index int
	// MRIndex is the CC measurement register index: 0 = MRTD, 1–4 =
	// RTMR0–RTMR3.
	MRIndex uint32
	// Type is the TCG event type; TypeName its name ("EV_EVENT_TAG", …).
	Type     uint32
	TypeName string
	// Digests are the event's digests in log order.
	Digests []Digest
	// Data is the raw event data.
	Data []byte
	// Details is the per-type decoding of Data (Trustee's "details").
	Details Details
	// DetailsErr is set when Data could not be decoded for its type; Details
	// is then empty. Trustee rejects such logs as a whole; this package keeps
	// the event (its digests still count for replay) with empty details.
	DetailsErr error
	// DigestMatchesEvent reports whether every digest equals the hash of
	// Data under the digest's algorithm (Trustee's "digest_matches_event").
	DigestMatchesEvent bool
}

// Log is a parsed CC event log.
type Log struct {
	algs   []AlgSize
	events []Event
	size   int
}

// Algorithms returns the digest algorithms and sizes declared by the Spec ID
// header, in header order.
func (l *Log) Algorithms() []AlgSize { return append([]AlgSize(nil), l.algs...) }

// Events returns the events in log order. The slice is a copy; the events'
// byte slices are shared with the Log and must not be modified.
func (l *Log) Events() []Event { return append([]Event(nil), l.events...) }

// Size returns the number of bytes of the input the log occupies (header and
// events, excluding padding).
func (l *Log) Size() int { return l.size }

// specIDSignature is the signature of a crypto-agile Spec ID header.
var specIDSignature = []byte("Spec ID Event03\x00")

const (
	evNoAction = 0x3
	// maxAlgs bounds the Spec ID header's algorithm table.
	maxAlgs = 16
)

// reader is a bounds-checked little-endian cursor over the input.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) bytes(n int, what string) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, fmt.Errorf("%w: %s at offset %d: need %d bytes, %d left", ErrMalformed, what, r.off, n, r.remaining())
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u16(what string) (uint16, error) {
	b, err := r.bytes(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

// ParseCCEL parses a CC event log (the contents of the CCEL region, padding
// included). It returns an error wrapping ErrMalformed for any structural
// problem; it never reads past the input and allocates at most in proportion
// to the input's length.
func ParseCCEL(data []byte) (*Log, error) {
	r := &reader{b: data}
	algs, err := parseSpecID(r)
	if err != nil {
		return nil, err
	}
	sizes := make(map[Alg]int, len(algs))
	for _, a := range algs {
		sizes[a.Alg] = a.Size
	}

	var events []Event
	for r.remaining() > 0 {
		if end, err := atEnd(r); err != nil {
			return nil, err
		} else if end {
			break
		}
		ev, err := parseEvent(r, sizes, len(algs))
		if err != nil {
			return nil, fmt.Errorf("%w (event %d)", err, len(events))
		}
		ev.Index = len(events)
		events = append(events, ev)
	}

	// Detach the events from the caller's buffer with a single copy of the
	// log region, then decode the details.
	size := r.off
	own := bytes.Clone(data[:size])
	// Every slice taken by the reader keeps the input's capacity, so its
	// offset in the input is cap(data)-cap(b).
	rebase := func(b []byte) []byte {
		if len(b) == 0 {
			return []byte{}
		}
		off := cap(data) - cap(b)
		return own[off : off+len(b) : off+len(b)]
	}
	for i := range events {
		ev := &events[i]
		ev.Data = rebase(ev.Data)
		for j := range ev.Digests {
			ev.Digests[j].Digest = rebase(ev.Digests[j].Digest)
		}
		ev.Details, ev.DetailsErr = decodeDetails(ev.Type, ev.Data)
		if ev.DetailsErr != nil {
			ev.Details = Details{}
		}
		ev.DigestMatchesEvent = digestsMatch(ev.Digests, ev.Data)
	}
	return &Log{algs: algs, events: events, size: size}, nil
}

// atEnd reports whether the cursor is at the padding that ends the log: the
// next 8 bytes (or all remaining bytes, when fewer are left) are all 0x00 or
// all 0xFF.
func atEnd(r *reader) (bool, error) {
	n := min(8, r.remaining())
	b := r.b[r.off : r.off+n]
	if allByte(b, 0x00) || allByte(b, 0xFF) {
		return true, nil
	}
	if n < 8 {
		return false, fmt.Errorf("%w: truncated event header at offset %d", ErrMalformed, r.off)
	}
	return false, nil
}

func allByte(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

// parseSpecID parses the TCG_PCClientPCREvent carrying TCG_EfiSpecIdEvent.
func parseSpecID(r *reader) ([]AlgSize, error) {
	missing := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMissingSpecID, fmt.Sprintf(format, args...))
	}
	if r.remaining() < 32 {
		return nil, missing("log is %d bytes long", r.remaining())
	}
	_, _ = r.u32("spec ID PCR index")
	typ, _ := r.u32("spec ID event type")
	if typ != evNoAction {
		return nil, missing("first event has type %#x, want EV_NO_ACTION", typ)
	}
	if _, err := r.bytes(20, "spec ID SHA-1 digest"); err != nil {
		return nil, err
	}
	size, _ := r.u32("spec ID event size")
	if uint64(size) > uint64(r.remaining()) {
		return nil, fmt.Errorf("%w: spec ID event declares %d data bytes, %d left", ErrMalformed, size, r.remaining())
	}
	body, _ := r.bytes(int(size), "spec ID event data")
	if len(body) < 29 || !bytes.Equal(body[:16], specIDSignature) {
		return nil, missing("first event is not a Spec ID Event03")
	}
	br := &reader{b: body, off: 24}
	n, _ := br.u32("spec ID algorithm count")
	if n == 0 || n > maxAlgs {
		return nil, fmt.Errorf("%w: spec ID header declares %d algorithms", ErrMalformed, n)
	}
	algs := make([]AlgSize, 0, n)
	for range n {
		id, err := br.u16("spec ID algorithm id")
		if err != nil {
			return nil, err
		}
		sz, err := br.u16("spec ID digest size")
		if err != nil {
			return nil, err
		}
		a := Alg(id)
		if want := knownDigestSize(a); (want != 0 && int(sz) != want) || sz == 0 {
			return nil, fmt.Errorf("%w: spec ID header declares %d-byte %v digests", ErrMalformed, sz, a)
		}
		for _, prev := range algs {
			if prev.Alg == a {
				return nil, fmt.Errorf("%w: spec ID header lists %v twice", ErrMalformed, a)
			}
		}
		algs = append(algs, AlgSize{Alg: a, Size: int(sz)})
	}
	vlen, err := br.bytes(1, "spec ID vendor info size")
	if err != nil {
		return nil, err
	}
	if _, err := br.bytes(int(vlen[0]), "spec ID vendor info"); err != nil {
		return nil, err
	}
	if br.remaining() != 0 {
		return nil, fmt.Errorf("%w: spec ID header has %d trailing bytes", ErrMalformed, br.remaining())
	}
	return algs, nil
}

// parseEvent parses one TCG_PCR_EVENT2. Byte slices alias the input.
func parseEvent(r *reader, sizes map[Alg]int, nalgs int) (Event, error) {
	var ev Event
	start := r.off
	mr, err := r.u32("MR index")
	if err != nil {
		return ev, err
	}
	typ, err := r.u32("event type")
	if err != nil {
		return ev, err
	}
	count, err := r.u32("digest count")
	if err != nil {
		return ev, err
	}
	if count > uint32(nalgs) {
		return ev, fmt.Errorf("%w: digest count %d at offset %d exceeds the %d algorithms of the header", ErrMalformed, count, start, nalgs)
	}
	digests := make([]Digest, 0, count)
	for range count {
		id, err := r.u16("digest algorithm")
		if err != nil {
			return ev, err
		}
		sz, ok := sizes[Alg(id)]
		if !ok {
			return ev, fmt.Errorf("%w: digest algorithm %v at offset %d is not declared by the header", ErrMalformed, Alg(id), r.off-2)
		}
		d, err := r.bytes(sz, "digest")
		if err != nil {
			return ev, err
		}
		digests = append(digests, Digest{Alg: Alg(id), Digest: d})
	}
	size, err := r.u32("event data size")
	if err != nil {
		return ev, err
	}
	if uint64(size) > uint64(r.remaining()) {
		return ev, fmt.Errorf("%w: event at offset %d declares %d data bytes, %d left", ErrMalformed, start, size, r.remaining())
	}
	d, _ := r.bytes(int(size), "event data")
	ev.MRIndex = mr
	ev.Type = typ
	ev.TypeName = EventTypeName(typ)
	ev.Digests = digests
	ev.Data = d
	return ev, nil
}
