package eventlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readBlob(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, name string) *Log {
	t.Helper()
	l, err := ParseCCEL(readBlob(t, name))
	if err != nil {
		t.Fatalf("ParseCCEL(%s): %v", name, err)
	}
	return l
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var zeroRTMR = strings.Repeat("00", RTMRSize)

// blobs lists the real logs with what testdata/README.md (and the shared
// vector README) says about them.
var blobs = []struct {
	name    string
	size    int    // where the log ends and the padding begins
	perMR   [5]int // events per CC MR index 0..4
	rtmrs   [4]string
	prefix  [4]string // for values the README gives abbreviated: first and last 8 hex digits
	suffix  [4]string
	nEvents int
}{
	{
		name: "CCEL_data", size: 9822, perMR: [5]int{0, 2, 3, 0, 0}, nEvents: 5,
		rtmrs: [4]string{
			"2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8213543f4",
			"0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf",
			zeroRTMR, zeroRTMR,
		},
	},
	{
		name: "CCEL_data_ovmf", size: 2120, perMR: [5]int{0, 14, 4, 2, 0}, nEvents: 20,
		rtmrs: [4]string{
			"8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193",
			"775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6",
			"94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a",
			zeroRTMR,
		},
	},
	{
		name: "CCEL_data_grub", size: 15130, perMR: [5]int{0, 20, 9, 8, 0}, nEvents: 37,
		rtmrs: [4]string{
			"cec0a104f691f60da2387fea3c2de00c4ac035e2bb479ff02edcce69039d9e9907f0b3e55031da3dc7038f423adebd79",
			"6c289e0c62182d41ebe97bdbc9872d10998a08eaa86adcdc684001a363207ee72942c7522cdf00a4bbc3d784bed7b670",
			"08919d017ba0e52cd6d966351c7de16fe76c1d3d3d3da4554239e4c7d16cb8b82a94e7eaea3a0e6e18eb690b999fd31e",
			zeroRTMR,
		},
	},
	{
		name: "CCEL_AAEL_alibabacloud", size: 11707, perMR: [5]int{0, 13, 14, 58, 2}, nEvents: 87,
		prefix: [4]string{"b796e1c1", "3b0b9061", "35f28013", ""},
		suffix: [4]string{"3a96d47c", "8ff37406", "412a8480", ""},
		rtmrs: [4]string{"", "", "",
			"5e4ecd49d3c7983d6f9ca36755b5cee0b423d7fa8c5a88aeb0681bd4698772bc37b4463dc5f722efe352a66417257dad",
		},
	},
}

// TestGoldenClaims checks that Claims reproduces Trustee's golden parse of
// every real log, field by field, as decoded JSON.
func TestGoldenClaims(t *testing.T) {
	for _, b := range blobs {
		t.Run(b.name, func(t *testing.T) {
			l := mustParse(t, b.name)
			var golden struct {
				Logs []any `json:"uefi_event_logs"`
			}
			if err := json.Unmarshal(readBlob(t, b.name+"_out.json"), &golden); err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(l.Claims())
			if err != nil {
				t.Fatal(err)
			}
			var got []any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(golden.Logs) || len(got) != b.nEvents {
				t.Fatalf("got %d events, golden %d, README %d", len(got), len(golden.Logs), b.nEvents)
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], golden.Logs[i]) {
					g, _ := json.Marshal(got[i])
					w, _ := json.Marshal(golden.Logs[i])
					t.Errorf("event %d differs:\n got  %s\n want %s", i, g, w)
				}
			}
			for _, ev := range l.Events() {
				if ev.DetailsErr != nil {
					t.Errorf("event %d (%s): %v", ev.Index, ev.TypeName, ev.DetailsErr)
				}
			}
		})
	}
}

// TestGoldenTDXClaims checks CCEL_data against the uefi_event_logs array of
// Trustee's golden TDX claims (tdx_quote_4.dat + CCEL_data), which the README
// says is the same array as CCEL_data_out.json.
func TestGoldenTDXClaims(t *testing.T) {
	l := mustParse(t, "CCEL_data")
	var golden struct {
		Logs []any `json:"uefi_event_logs"`
	}
	if err := json.Unmarshal(readBlob(t, "parse_tdx_claims_expected.json"), &golden); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(l.Claims())
	var got []any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, golden.Logs) {
		t.Errorf("claims differ from parse_tdx_claims_expected.json:\n got %s", raw)
	}
	mismatched := 0
	for _, ev := range l.Events() {
		if !ev.DigestMatchesEvent {
			mismatched++
		}
	}
	if mismatched != 3 {
		t.Errorf("%d events with digest_matches_event false, README says 3", mismatched)
	}
}

func TestStructure(t *testing.T) {
	for _, b := range blobs {
		t.Run(b.name, func(t *testing.T) {
			data := readBlob(t, b.name)
			l := mustParse(t, b.name)
			if l.Size() != b.size {
				t.Errorf("Size() = %d, want %d", l.Size(), b.size)
			}
			var per [5]int
			for _, ev := range l.Events() {
				if ev.MRIndex > 4 {
					t.Fatalf("event %d has MR index %d", ev.Index, ev.MRIndex)
				}
				per[ev.MRIndex]++
			}
			if per != b.perMR {
				t.Errorf("events per MR index = %v, want %v", per, b.perMR)
			}
			if got := l.Algorithms(); len(got) != 1 || got[0] != (AlgSize{AlgSHA384, 48}) {
				t.Errorf("Algorithms() = %v", got)
			}
			// The log without its padding parses to the same events.
			l2, err := ParseCCEL(data[:b.size])
			if err != nil {
				t.Fatalf("unpadded: %v", err)
			}
			if !reflect.DeepEqual(l.Claims(), l2.Claims()) {
				t.Error("unpadded log gives different claims")
			}
		})
	}
}

// TestPaddingStops checks that parsing stops at zero and 0xFF fill, and that a
// log whose padding starts with anything else is read as another event.
func TestPaddingStops(t *testing.T) {
	data := readBlob(t, "CCEL_data_ovmf")
	const end = 2120
	for _, fill := range []byte{0x00, 0xFF} {
		b := append(bytes.Clone(data[:end]), bytes.Repeat([]byte{fill}, 1000)...)
		l, err := ParseCCEL(b)
		if err != nil || len(l.Events()) != 20 {
			t.Errorf("fill %#x: err %v", fill, err)
		}
		// A short tail of fill is also accepted.
		if _, err := ParseCCEL(b[:end+5]); err != nil {
			t.Errorf("fill %#x, 5-byte tail: %v", fill, err)
		}
	}
	b := append(bytes.Clone(data[:end]), bytes.Repeat([]byte{0xAB}, 1000)...)
	if _, err := ParseCCEL(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-padding tail: err = %v, want ErrMalformed", err)
	}
}

func TestReplay(t *testing.T) {
	for _, b := range blobs {
		t.Run(b.name, func(t *testing.T) {
			l := mustParse(t, b.name)
			got, err := l.Replay()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 4 {
				h := hex.EncodeToString(got[i])
				switch {
				case b.rtmrs[i] != "":
					if h != b.rtmrs[i] {
						t.Errorf("RTMR%d = %s, want %s", i, h, b.rtmrs[i])
					}
				default:
					if !strings.HasPrefix(h, b.prefix[i]) || !strings.HasSuffix(h, b.suffix[i]) {
						t.Errorf("RTMR%d = %s, want %s…%s", i, h, b.prefix[i], b.suffix[i])
					}
				}
			}
			if err := l.VerifyRTMRs(got); err != nil {
				t.Errorf("VerifyRTMRs(replayed): %v", err)
			}
		})
	}
}

func rtmrs(t *testing.T, s [4]string) [4][]byte {
	var r [4][]byte
	for i := range s {
		r[i] = unhex(t, s[i])
	}
	return r
}

func TestVerifyRTMRsMismatch(t *testing.T) {
	l := mustParse(t, "CCEL_data")
	good := blobs[0].rtmrs
	if err := l.VerifyRTMRs(rtmrs(t, good)); err != nil {
		t.Fatalf("genuine RTMRs: %v", err)
	}
	nonzero := "01" + zeroRTMR[2:]
	cases := []struct {
		name     string
		mutate   func(*[4]string)
		rtmr     int
		replayed string
	}{
		{"first nibble of RTMR1", func(r *[4]string) { r[1] = "2" + r[1][1:] }, 1, good[1]},
		{"last byte of RTMR0", func(r *[4]string) { r[0] = r[0][:94] + "f5" }, 0, good[0]},
		{"empty RTMR2 not zero", func(r *[4]string) { r[2] = nonzero }, 2, zeroRTMR},
		{"empty RTMR3 not zero", func(r *[4]string) { r[3] = nonzero }, 3, zeroRTMR},
		{"RTMR3 missing", func(r *[4]string) { r[3] = "" }, 3, zeroRTMR},
		{"RTMR1 truncated", func(r *[4]string) { r[1] = r[1][:64] }, 1, good[1]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			quote := good
			c.mutate(&quote)
			err := l.VerifyRTMRs(rtmrs(t, quote))
			if !errors.Is(err, ErrRTMRMismatch) {
				t.Fatalf("err = %v, want ErrRTMRMismatch", err)
			}
			var me *RTMRMismatchError
			if !errors.As(err, &me) {
				t.Fatalf("err %T is not *RTMRMismatchError", err)
			}
			if me.RTMR != c.rtmr || hex.EncodeToString(me.Replayed) != c.replayed || hex.EncodeToString(me.Expected) != quote[c.rtmr] {
				t.Errorf("got RTMR%d expected %x replayed %x", me.RTMR, me.Expected, me.Replayed)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.replayed) || !strings.Contains(msg, quote[c.rtmr]) {
				t.Errorf("message %q lacks the values", msg)
			}
		})
	}
}

// TestReplayMRTDAndHighIndices checks that MR index 0 and indices above 4 do
// not change RTMRs, and that EV_NO_ACTION events in an RTMR are replayed as
// Trustee does.
func TestReplayMRTDAndHighIndices(t *testing.T) {
	base := readBlob(t, "CCEL_data_ovmf")[:2120]
	digest := bytes.Repeat([]byte{0x42}, 48)
	ev := func(mr, typ uint32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, mr)
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint16(b, uint16(AlgSHA384))
		b = append(b, digest...)
		return binary.LittleEndian.AppendUint32(b, 0)
	}
	want, _ := mustParse(t, "CCEL_data_ovmf").Replay()
	for _, mr := range []uint32{0, 5, 17} {
		l, err := ParseCCEL(append(bytes.Clone(base), ev(mr, EvAction)...))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := l.Replay()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event at MR index %d changed the RTMRs", mr)
		}
	}
	l, err := ParseCCEL(append(bytes.Clone(base), ev(4, EvNoAction)...))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := l.Replay()
	if bytes.Equal(got[3], make([]byte, 48)) {
		t.Error("EV_NO_ACTION in MR index 4 was not replayed into RTMR3")
	}
}

// specEnd returns the offset of the first event after the Spec ID header.
func specEnd(b []byte) int { return 32 + int(binary.LittleEndian.Uint32(b[28:])) }

func TestMalformed(t *testing.T) {
	orig := readBlob(t, "CCEL_data_grub")
	first := specEnd(orig) // first TCG_PCR_EVENT2
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
	}
	put16 := func(off int, v uint16) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b }
	}
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		specID bool // also ErrMissingSpecID
	}{
		{"empty", cut(0), true},
		{"short header", cut(31), true},
		{"first event not EV_NO_ACTION", put32(4, EvAction), true},
		{"bad signature", func(b []byte) []byte { b[32] = 'X'; return b }, true},
		{"spec ID size beyond input", put32(28, 0xFFFFFFF0), false},
		{"zero algorithms", put32(32+24, 0), false},
		{"absurd algorithm count", put32(32+24, 0x7FFFFFFF), false},
		{"wrong SHA-384 size", put16(32+30, 32), false},
		{"spec ID size mismatch", put32(28, uint32(first-32-1)), false},
		{"digest count overflow", put32(first+8, 0xFFFFFFFF), false},
		{"digest count above header", put32(first+8, 2), false},
		{"undeclared digest algorithm", put16(first+12, uint16(AlgSHA256)), false},
		{"absurd event size", put32(first+14+48, 0xFFFFFFFF), false},
		{"event size past end", put32(first+14+48, uint32(len(orig))), false},
		{"truncated last event", cut(15130 - 1), false},
		{"truncated event header", cut(first + 10), false},
		{"truncated digest", cut(first + 14 + 20), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(bytes.Clone(orig))
			l, err := ParseCCEL(b)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v (log %v), want ErrMalformed", err, l != nil)
			}
			t.Log(err)
			if c.specID != errors.Is(err, ErrMissingSpecID) {
				t.Errorf("errors.Is(err, ErrMissingSpecID) = %v: %v", !c.specID, err)
			}
		})
	}
}

func TestNoSHA384(t *testing.T) {
	// A minimal SHA-256-only log with one event.
	b := specIDHeader(AlgSize{AlgSHA256, 32})
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, EvSeparator)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint16(b, uint16(AlgSHA256))
	sep := []byte{0, 0, 0, 0}
	h, _ := hashOf(AlgSHA256, sep)
	b = append(b, h...)
	b = binary.LittleEndian.AppendUint32(b, 4)
	b = append(b, sep...)
	l, err := ParseCCEL(b)
	if err != nil {
		t.Fatal(err)
	}
	if ev := l.Events(); len(ev) != 1 || !ev[0].DigestMatchesEvent {
		t.Fatalf("events %+v", ev)
	}
	if _, err := l.Replay(); !errors.Is(err, ErrNoSHA384) {
		t.Errorf("Replay err = %v, want ErrNoSHA384", err)
	}
	if err := l.VerifyRTMRs([4][]byte{}); !errors.Is(err, ErrNoSHA384) {
		t.Errorf("VerifyRTMRs err = %v, want ErrNoSHA384", err)
	}
}

// specIDHeader builds a TCG_EfiSpecIdEvent header for algs.
func specIDHeader(algs ...AlgSize) []byte {
	body := append([]byte(nil), specIDSignature...)
	body = binary.LittleEndian.AppendUint32(body, 0) // platform class
	body = append(body, 0, 2, 0, 2)                  // version 2.0, errata 0, uintnSize 2
	body = binary.LittleEndian.AppendUint32(body, uint32(len(algs)))
	for _, a := range algs {
		body = binary.LittleEndian.AppendUint16(body, uint16(a.Alg))
		body = binary.LittleEndian.AppendUint16(body, uint16(a.Size))
	}
	body = append(body, 0) // vendor info size
	b := binary.LittleEndian.AppendUint32(nil, 0)
	b = binary.LittleEndian.AppendUint32(b, EvNoAction)
	b = append(b, make([]byte, 20)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// TestDetached checks that the parsed log does not alias the caller's buffer
// and that Claims returns fresh values.
func TestDetached(t *testing.T) {
	data := readBlob(t, "CCEL_AAEL_alibabacloud")
	l, err := ParseCCEL(data)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(l.Claims())
	for i := range data {
		data[i] ^= 0xFF
	}
	c := l.Claims()
	c[86].(map[string]any)["details"].(map[string]any)["data"].(map[string]any)["content"].(map[string]any)["key"] = "changed"
	c[0].(map[string]any)["type_name"] = "changed"
	after, _ := json.Marshal(l.Claims())
	if !bytes.Equal(before, after) {
		t.Error("claims changed after mutating the input or a previous Claims result")
	}
}

func TestMultipleDigests(t *testing.T) {
	data := []byte("Calling EFI Application from Boot Option")
	h256, _ := hashOf(AlgSHA256, data)
	h384, _ := hashOf(AlgSHA384, data)
	build := func(d384 []byte) []byte {
		b := specIDHeader(AlgSize{AlgSHA256, 32}, AlgSize{AlgSHA384, 48})
		b = binary.LittleEndian.AppendUint32(b, 2)
		b = binary.LittleEndian.AppendUint32(b, EvEFIAction)
		b = binary.LittleEndian.AppendUint32(b, 2)
		b = binary.LittleEndian.AppendUint16(b, uint16(AlgSHA256))
		b = append(b, h256...)
		b = binary.LittleEndian.AppendUint16(b, uint16(AlgSHA384))
		b = append(b, d384...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	l, err := ParseCCEL(build(h384))
	if err != nil {
		t.Fatal(err)
	}
	ev := l.Events()[0]
	if !ev.DigestMatchesEvent || len(ev.Digests) != 2 || *ev.Details.String != string(data) {
		t.Errorf("event %+v", ev)
	}
	r, err := l.Replay()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hashOf(AlgSHA384, append(make([]byte, 48), h384...))
	if !bytes.Equal(r[1], want) || !bytes.Equal(r[0], make([]byte, 48)) {
		t.Errorf("replay = %x", r)
	}
	bad := bytes.Clone(h384)
	bad[0] ^= 1
	l, err = ParseCCEL(build(bad))
	if err != nil {
		t.Fatal(err)
	}
	if l.Events()[0].DigestMatchesEvent {
		t.Error("digest_matches_event true with one wrong digest")
	}
}

// TestQuote4RTMRsDoNotMatchCCELData reproduces the README conclusion that
// tdx_quote_4.dat's RTMRs are not the replay of CCEL_data, so a full
// evaluation that enforces replay must reject that pair.
func TestQuote4RTMRsDoNotMatchCCELData(t *testing.T) {
	var golden struct {
		Quote struct {
			Body map[string]string `json:"body"`
		} `json:"quote"`
	}
	if err := json.Unmarshal(readBlob(t, "parse_tdx_claims_expected.json"), &golden); err != nil {
		t.Fatal(err)
	}
	var quote [4][]byte
	for i := range quote {
		quote[i] = unhex(t, golden.Quote.Body["rtmr_"+string(rune('0'+i))])
	}
	err := mustParse(t, "CCEL_data").VerifyRTMRs(quote)
	var me *RTMRMismatchError
	if !errors.As(err, &me) || me.RTMR != 0 ||
		!strings.HasPrefix(hex.EncodeToString(me.Expected), "e940da7c") ||
		!strings.HasPrefix(hex.EncodeToString(me.Replayed), "2dc71230") {
		t.Fatalf("err = %v, want RTMR0 mismatch e940da7c… vs 2dc71230…", err)
	}
}

// TestUndecodableDetails checks that an event whose data cannot be decoded
// for its type keeps its place (and its digests) with empty details.
func TestUndecodableDetails(t *testing.T) {
	data := bytes.Clone(readBlob(t, "CCEL_data_ovmf"))
	i := bytes.Index(data, []byte("Calling EFI Application"))
	if i < 0 {
		t.Fatal("EV_EFI_ACTION not found")
	}
	data[i] = 0xFF // no longer UTF-8
	l, err := ParseCCEL(data)
	if err != nil {
		t.Fatal(err)
	}
	var hit *Event
	for _, ev := range l.Events() {
		if ev.DetailsErr != nil {
			if hit != nil {
				t.Fatal("more than one undecodable event")
			}
			hit = &ev
		}
	}
	if hit == nil || hit.TypeName != "EV_EFI_ACTION" || hit.Details.String != nil || hit.DigestMatchesEvent {
		t.Fatalf("event %+v", hit)
	}
	if d := l.Claims()[hit.Index].(map[string]any)["details"].(map[string]any); len(d) != 0 {
		t.Errorf("details = %v, want {}", d)
	}
	// The digests, not the data, are replayed: RTMRs are unchanged.
	want, _ := mustParse(t, "CCEL_data_ovmf").Replay()
	if got, _ := l.Replay(); !reflect.DeepEqual(got, want) {
		t.Error("replay changed")
	}
}
