package kbs

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/protocol"
)

func TestSessionWireFormat(t *testing.T) {
	ts := time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)
	authed := &session{
		ID: "0123456789abcdef0123456789abcdef", Timeout: ts,
		Request:   protocol.Request{Version: "0.4.0", Tee: "sample", ExtraParams: json.RawMessage(`""`)},
		Challenge: protocol.Challenge{Nonce: "bm9uY2U=", ExtraParams: json.RawMessage(`""`)},
	}
	b, err := authed.marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Authed":{"request":{"version":"0.4.0","tee":"sample","extra-params":""},"challenge":{"nonce":"bm9uY2U=","extra-params":""},"id":"0123456789abcdef0123456789abcdef","timeout":"2026-11-27T01:02:03Z"}}`
	if string(b) != want {
		t.Fatalf("authed:\n got %s\nwant %s", b, want)
	}
	back, err := unmarshalSession(b)
	if err != nil || back.attested() || back.Challenge.Nonce != "bm9uY2U=" || !back.Timeout.Equal(ts) {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	attested := &session{ID: authed.ID, Timeout: ts, Token: "a.b.c"}
	b, _ = attested.marshal()
	if !bytes.HasPrefix(b, []byte(`{"Attested":{"token":"a.b.c"`)) {
		t.Fatalf("attested: %s", b)
	}
	// A session written by Trustee (RFC 3339 with nanoseconds) loads.
	rust := `{"Attested":{"token":"t","id":"0123456789abcdef0123456789abcdef","timeout":"2026-11-27T01:02:03.123456789Z"}}`
	s, err := unmarshalSession([]byte(rust))
	if err != nil || !s.attested() || s.Timeout.Nanosecond() != 123456789 {
		t.Fatalf("trustee session: %v %+v", err, s)
	}
	for _, bad := range []string{`{}`, `{"Other":{}}`, `{"Authed":{"timeout":"yesterday"}}`, `[]`} {
		if _, err := unmarshalSession([]byte(bad)); err == nil {
			t.Errorf("%s: expected an error", bad)
		}
	}
}

func TestSessionID(t *testing.T) {
	id, err := newID(bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if id != "00000000000040008000000000000000" || !validSessionID(id) {
		t.Fatalf("id %s", id)
	}
	for _, bad := range []string{"", "00000000000040008000000000000000a", "0000000000004000800000000000000G", "../../../etc/passwd00000000000000"} {
		if validSessionID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
